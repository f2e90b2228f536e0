import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (package chromium, see scripts/install-test-deps.sh). */
export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots go here, below the directory the tests run from. */
export const ARTIFACTS = join(process.cwd(), 'artifacts');

type ContextOptions = NonNullable<Parameters<typeof chromium.launchPersistentContext>[1]>;

/**
 * Headless Chromium with a fresh profile directory (playwright passes it as --user-data-dir) that
 * accepts the test CA's certificates; `options` adds to or overrides the context's. The caller closes
 * the browser and removes `profile`.
 */
export async function launchChromium(options: ContextOptions = {}): Promise<{ browser: BrowserContext; profile: string }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-test-deps.sh (Debian package chromium)`);
  const profile = mkdtempSync(join(tmpdir(), 'fleet-telemetry-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true,
    ...options,
  });
  return { browser, profile };
}
