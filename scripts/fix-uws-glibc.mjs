// postinstall: make uWebSockets.js v20.57.0 load on glibc < 2.38 (Debian 12, Ubuntu 22.04, RHEL 9).
//
// The upstream Linux binaries were linked against glibc 2.38 and import three C23 functions that older
// glibc lacks; the loader then refuses the whole addon. This rebinds those imports to the classic glibc
// functions by editing the ELF in place (see uws-glibc-elf.mjs for why that is safe), keeps the
// untouched file as <file>.orig, and proves the result by loading it in a child process.
//
// Plain JavaScript because it runs before TypeScript is compiled. One line of output; exit 0 whenever
// there is nothing to do, non-zero when the addon needed fixing and could not be fixed, so that
// `npm ci` fails now instead of the server failing at start.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ElfPatchError, GLIBC_238, findGlibc238Imports, patchGlibc238Imports, readVersionNeeds } from './uws-glibc-elf.mjs';

const TAG = 'uWebSockets.js glibc fix:';
const PACKAGE = 'uWebSockets.js';

class FixFailure extends Error {}

/** @param {string} line */
function say(line) {
  console.log(`${TAG} ${line}`);
}

/** @param {string} version e.g. "2.36" @returns {number[]} */
function parseVersion(version) {
  return version.split('.').map((p) => Number.parseInt(p, 10) || 0);
}

/** @param {number[]} a @param {number[]} b */
function compareVersions(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function packageDir() {
  const require = createRequire(import.meta.url);
  try {
    // The package's "exports" does not expose package.json; its CommonJS entry sits next to the binaries.
    return path.dirname(require.resolve(PACKAGE));
  } catch {
    return null;
  }
}

/**
 * Loads the package in a fresh process: a failed dlopen cannot be retried in this one, and the real
 * consumer (the server) loads it the same way.
 * @param {string} dir
 * @returns {{ok: true} | {ok: false, error: string}}
 */
function tryLoad(dir) {
  const entry = path.join(dir, 'uws.js');
  const script = `
    let uWS;
    try { uWS = require(${JSON.stringify(entry)}); }
    catch (e) { process.stderr.write(String(e && e.message || e).split('\\n').filter(Boolean).pop()); process.exit(3); }
    const missing = ['App', 'SSLApp'].filter((k) => typeof uWS[k] !== 'function');
    if (missing.length) { process.stderr.write('loaded, but ' + missing.join(' and ') + ' missing'); process.exit(4); }
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return { ok: true };
  const why = (r.stderr || '').trim() || (r.error ? r.error.message : `exit ${r.status ?? r.signal}`);
  return { ok: false, error: why };
}

/**
 * Highest glibc version the object still needs once GLIBC_2.38 is out of the way; if the running
 * glibc is older than that, the rebinding cannot make the addon load.
 * @param {Uint8Array} buf
 */
function otherGlibcRequirement(buf) {
  let max = null;
  for (const need of readVersionNeeds(buf)) {
    for (const v of need.versions) {
      const m = /^GLIBC_(\d+(?:\.\d+)+)$/.exec(v.name);
      if (!m || v.weak || v.name === GLIBC_238) continue;
      if (!max || compareVersions(parseVersion(m[1]), parseVersion(max)) > 0) max = m[1];
    }
  }
  return max;
}

/**
 * Replaces (or creates) a file atomically.
 * @param {string} file @param {Uint8Array} bytes @param {number} mode
 */
function replaceFile(file, bytes, mode) {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes, { flag: 'wx' });
    chmodSync(tmp, mode & 0o7777);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * @param {string} file
 * @returns {{status: 'patched', original: Buffer, mode: number} | {status: 'not-needed'}}
 */
function patchFile(file) {
  const original = readFileSync(file);
  const mode = statSync(file).mode;
  if (findGlibc238Imports(original).requirement !== 'required') return { status: 'not-needed' };
  const patched = Buffer.from(original);
  patchGlibc238Imports(patched);
  if (findGlibc238Imports(patched).requirement === 'required') {
    throw new ElfPatchError('ELF_INCONSISTENT', `${path.basename(file)} still requires ${GLIBC_238} after patching`);
  }
  // A file that still requires GLIBC_2.38 is the pristine upstream binary, so it is the right backup
  // even when an older .orig (from a previous version of the package) is lying around.
  const backup = `${file}.orig`;
  if (!existsSync(backup) || !readFileSync(backup).equals(original)) replaceFile(backup, original, mode);
  replaceFile(file, patched, mode);
  return { status: 'patched', original, mode };
}

function main() {
  if (process.platform !== 'linux') {
    say(`nothing to do on ${process.platform} (only the Linux binaries depend on glibc)`);
    return;
  }
  const report = /** @type {any} */ (process.report.getReport());
  const glibc = report?.header?.glibcVersionRuntime;
  if (typeof glibc !== 'string') {
    say('nothing to do: this Node is not linked against glibc (uWS ships glibc Linux binaries only)');
    return;
  }
  if (compareVersions(parseVersion(glibc), [2, 38]) >= 0) {
    say(`nothing to do: glibc ${glibc} provides ${GLIBC_238}`);
    return;
  }
  const dir = packageDir();
  if (!dir) {
    say(`nothing to do: ${PACKAGE} is not installed`);
    return;
  }
  const abi = process.versions.modules;
  const hostName = `uws_linux_${process.arch}_${abi}.node`;
  const hostFile = path.join(dir, hostName);
  if (!existsSync(hostFile)) {
    say(`nothing to patch: ${PACKAGE} ships no ${hostName} (Node ABI ${abi} on ${process.arch} is not supported by this uWS build)`);
    return;
  }

  const before = tryLoad(dir);
  if (before.ok) {
    const how = existsSync(`${hostFile}.orig`) ? `already patched (original kept as ${hostName}.orig)` : 'needs no patch';
    say(`nothing to do: ${hostName} loads on glibc ${glibc}, ${how}`);
    return;
  }

  const hostState = findGlibc238Imports(readFileSync(hostFile));
  if (hostState.requirement !== 'required') {
    throw new FixFailure(`${hostName} does not need ${GLIBC_238} but still fails to load on glibc ${glibc}: ${before.error}`);
  }
  if (hostState.blockers.length > 0) {
    throw new FixFailure(`${hostName} needs ${GLIBC_238} for ${hostState.blockers.join(', ')} as well, which this fix does not know how to rebind; use glibc >= 2.38 or the official release`);
  }
  const stillNeeded = otherGlibcRequirement(readFileSync(hostFile));
  if (stillNeeded && compareVersions(parseVersion(stillNeeded), parseVersion(glibc)) > 0) {
    throw new FixFailure(`${hostName} also needs glibc ${stillNeeded} (this system has ${glibc}); rebinding the ${GLIBC_238} imports cannot help, upgrade the OS`);
  }

  // Every Linux architecture for this ABI, so a node_modules copied into a container of the other
  // architecture works too; only the one this Node runs can be verified by loading it.
  const abiPattern = new RegExp(`^uws_linux_[a-z0-9]+_${abi}\\.node$`);
  const names = readdirSync(dir).filter((n) => abiPattern.test(n)).sort((a, b) => (a === hostName ? -1 : b === hostName ? 1 : a.localeCompare(b)));
  /** @type {{file: string, original: Buffer, mode: number}[]} */
  const changed = [];
  /** @type {string[]} */
  const warnings = [];
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const r = patchFile(file);
      if (r.status === 'patched') changed.push({ file, original: r.original, mode: r.mode });
    } catch (e) {
      if (name === hostName) {
        restore(changed);
        throw new FixFailure(`could not patch ${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
      warnings.push(`${name} left unpatched (${e instanceof Error ? e.message : String(e)})`);
    }
  }

  const after = tryLoad(dir);
  if (!after.ok) {
    restore(changed);
    throw new FixFailure(`patched ${hostName} still does not load, original restored: ${after.error}`);
  }
  const patchedNames = changed.map((c) => path.basename(c.file));
  say(`glibc ${glibc} < 2.38: patched ${patchedNames.join(', ')} (C23 __isoc23_strtol/strtoul/sscanf imports rebound to strtol/strtoul/sscanf; originals kept as *.orig); verified: ${hostName} loads with App and SSLApp` +
      (warnings.length ? `; warning: ${warnings.join('; ')}` : ''));
}

/** Puts back the bytes found at the start of this run. @param {{file: string, original: Buffer, mode: number}[]} changed */
function restore(changed) {
  for (const { file, original, mode } of changed) replaceFile(file, original, mode);
}

try {
  main();
} catch (e) {
  const message = e instanceof FixFailure || e instanceof ElfPatchError
    ? e.message
    : (e instanceof Error ? e.stack ?? e.message : String(e));
  console.error(`${TAG} FAILED: ${message} (${PACKAGE} will not load on this machine; see docs/uws-glibc.md)`);
  process.exitCode = 1;
}
