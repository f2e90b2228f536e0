import { X509Certificate } from 'node:crypto';
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { CertificateReloadConfig } from '../config/types.js';
import type { DashboardListener } from '../dashboard/dashboard-listener.js';
import type { TlsMetrics } from './tls-metrics.js';
import { connectHostFor } from '../pki/chain-check.js';
import type { VehicleListener } from '../vehicle/vehicle-listener.js';
import { Findings, checkServerFiles, checkVehicleCas, probeStagedApp } from './tls-files-check.js';
import { vehicleTrust, type VehicleTrust } from './vehicle-trust.js';

const DAY_MS = 86_400_000;
/** From this close to expiry, every check logs a warning. */
export const EXPIRY_WARNING_DAYS = 14;
/** Renewal tools write several files one after the other: wait for them to settle. */
export const SETTLE_MS = 500;
const EXPIRY_CHECK_INTERVAL_MS = 6 * 3600 * 1000;

export type ListenerName = 'vehicle' | 'dashboard';

export interface ReloadOutcome {
  listener: ListenerName;
  result: 'applied' | 'refused' | 'unchanged';
  problems: string[];
}

/**
 * Certificate renewal without a restart. On a change of TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_CHAIN_FILE,
 * VEHICLE_CA_FILE(_EXTRA) or the dashboard's pair (file watch), or on SIGHUP: the files are checked as
 * at start-up, a new listener app is made from them and handshaken with on a private port (the car's
 * self-check with SELF_CHECK), and only then does it take new handshakes. Connected cars and
 * dashboards stay where they are. A refused file leaves the old certificate in use; the refusal is
 * logged and counted.
 */
export class CertificateReloader {
  private trust: VehicleTrust;
  private readonly watchers: FSWatcher[] = [];
  private settleTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private running: Promise<ReloadOutcome[]> | null = null;
  private again = false;
  /** The leaf each listener serves now, for the days-left gauge and the expiry warning. */
  private readonly leaves = new Map<ListenerName, X509Certificate>();
  /** What the files held when last applied: an unchanged file is not reloaded. */
  private readonly applied = new Map<ListenerName, string>();

  constructor(
    private readonly o: {
      config: CertificateReloadConfig;
      vehicles: VehicleListener;
      dashboard: DashboardListener;
      metrics: TlsMetrics;
      logger: Logger;
      trust: VehicleTrust;
    },
  ) {
    this.trust = o.trust;
    this.leaves.set('vehicle', leafOf(o.config.tls.certFile));
    this.leaves.set('dashboard', leafOf(this.dashboardFiles().certFile));
    this.applied.set('vehicle', this.fingerprintOf('vehicle'));
    this.applied.set('dashboard', this.fingerprintOf('dashboard'));
    o.metrics.certificateDaysLeft = () => this.daysLeft();
  }

  /** Days left per listener, read at scrape time. */
  daysLeft(now = Date.now()): Array<[ListenerName, number]> {
    return [...this.leaves].map(([listener, leaf]) => [listener, (Date.parse(leaf.validTo) - now) / DAY_MS]);
  }

  /** Watch the files and check expiry periodically. */
  start(): void {
    const files = new Set([
      this.o.config.tls.certFile,
      this.o.config.tls.keyFile,
      this.o.config.tls.caChainFile,
      this.o.config.vehicleCa.file,
      this.o.config.vehicleCa.extraFile,
      this.o.config.dashboard.certFile,
      this.o.config.dashboard.keyFile,
    ].filter((file) => file !== ''));
    // Directories, not files: renewal tools replace files (rename, symlink swap), which ends a file watch.
    const byDirectory = new Map<string, Set<string>>();
    for (const file of files) {
      const names = byDirectory.get(dirname(file)) ?? new Set<string>();
      names.add(basename(file));
      byDirectory.set(dirname(file), names);
    }
    for (const [directory, names] of byDirectory) {
      try {
        const watcher = watch(directory, { persistent: false }, (_event, name) => {
          // Some platforms give no name; then any change in the directory counts.
          if (name === null || names.has(name.toString()) || name.toString().startsWith('..')) this.scheduleReload('file_change');
        });
        watcher.on('error', (error) => this.o.logger.warn({ err: error, directory }, 'certificate_watch_failed'));
        this.watchers.push(watcher);
      } catch (error) {
        this.o.logger.warn({ err: error, directory }, 'certificate_watch_failed');
      }
    }
    this.checkExpiry();
    this.expiryTimer = setInterval(() => this.checkExpiry(), EXPIRY_CHECK_INTERVAL_MS);
    this.expiryTimer.unref();
  }

  stop(): void {
    for (const watcher of this.watchers.splice(0)) watcher.close();
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    if (this.expiryTimer !== null) clearInterval(this.expiryTimer);
    this.settleTimer = null;
    this.expiryTimer = null;
    this.trust.cleanup();
  }

  private scheduleReload(trigger: string): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      void this.reload(trigger);
    }, SETTLE_MS);
    this.settleTimer.unref();
  }

  /** Check and apply what the files hold now (SIGHUP, a file change, or a test). One at a time. */
  reload(trigger = 'request'): Promise<ReloadOutcome[]> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    this.running = this.reloadNow(trigger).finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        void this.reload(trigger);
      }
    });
    return this.running;
  }

  private async reloadNow(trigger: string): Promise<ReloadOutcome[]> {
    const outcomes = [await this.reloadVehicle(trigger), await this.reloadDashboard(trigger)];
    this.checkExpiry();
    return outcomes;
  }

  private dashboardFiles(): { certFile: string; keyFile: string; own: boolean } {
    const d = this.o.config.dashboard;
    return d.certFile !== '' ? { certFile: d.certFile, keyFile: d.keyFile, own: true } : { certFile: this.o.config.tls.certFile, keyFile: this.o.config.tls.keyFile, own: false };
  }

  /** A digest of every file a listener is made from: equal means nothing to do. */
  private fingerprintOf(listener: ListenerName): string {
    const { config } = this.o;
    const files =
      listener === 'vehicle'
        ? [config.tls.certFile, config.tls.keyFile, config.tls.caChainFile, config.vehicleCa.file, config.vehicleCa.extraFile]
        : [this.dashboardFiles().certFile, this.dashboardFiles().keyFile];
    return files.map((file) => (file === '' ? '' : safeRead(file))).join('\u0000');
  }

  private async reloadVehicle(trigger: string): Promise<ReloadOutcome> {
    const { config } = this.o;
    const state = this.fingerprintOf('vehicle');
    if (state === this.applied.get('vehicle')) return { listener: 'vehicle', result: 'unchanged', problems: [] };
    const findings = new Findings();
    const now = new Date();
    const ref = (env: string, path: string) => ({ env, path, shown: path });
    const chain = checkServerFiles(
      {
        cert: ref('TLS_CERT_FILE', config.tls.certFile),
        key: ref('TLS_KEY_FILE', config.tls.keyFile),
        passphrase: config.tls.keyPassphrase,
        caChain: ref('TLS_CA_CHAIN_FILE', config.tls.caChainFile),
        domain: config.domain,
        strict: config.selfCheck,
      },
      now,
      findings,
    );
    const casOk = checkVehicleCas(
      [ref('VEHICLE_CA_FILE', config.vehicleCa.file), ...(config.vehicleCa.extraFile ? [ref('VEHICLE_EXTRA_CA_FILE', config.vehicleCa.extraFile)] : [])],
      now,
      findings,
    );
    if (chain === undefined || !casOk) return this.refused('vehicle', trigger, findings.problems);
    let trust: VehicleTrust;
    try {
      trust = vehicleTrust(config.vehicleCa.file, config.vehicleCa.extraFile);
    } catch (error) {
      return this.refused('vehicle', trigger, [`VEHICLE_CA_FILE: ${(error as Error).message}`]);
    }
    const caChainPem = config.selfCheck ? safeRead(config.tls.caChainFile) : undefined;
    const problems = await this.o.vehicles.reload(
      { certFile: config.tls.certFile, keyFile: config.tls.keyFile, keyPassphrase: config.tls.keyPassphrase, trustedCaFile: trust.file, operatorCas: trust.operatorCas },
      (port) => probeStagedApp({ host: connectHostFor(config.vehicle.host), port, servername: config.domain, expected: chain[0], caChainPem }),
    );
    if (problems.length > 0) {
      trust.cleanup();
      return this.refused('vehicle', trigger, problems);
    }
    this.trust.cleanup();
    this.trust = trust;
    return this.appliedNow('vehicle', trigger, chain[0], state, findings.warnings);
  }

  private async reloadDashboard(trigger: string): Promise<ReloadOutcome> {
    const { config } = this.o;
    const state = this.fingerprintOf('dashboard');
    if (state === this.applied.get('dashboard')) return { listener: 'dashboard', result: 'unchanged', problems: [] };
    const files = this.dashboardFiles();
    const findings = new Findings();
    const chain = checkServerFiles(
      {
        cert: { env: files.own ? 'DASHBOARD_TLS_CERT_FILE' : 'TLS_CERT_FILE', path: files.certFile, shown: files.certFile },
        key: { env: files.own ? 'DASHBOARD_TLS_KEY_FILE' : 'TLS_KEY_FILE', path: files.keyFile, shown: files.keyFile },
        passphrase: config.tls.keyPassphrase,
        strict: config.selfCheck,
      },
      new Date(),
      findings,
    );
    if (chain === undefined) return this.refused('dashboard', trigger, findings.problems);
    const problems = await this.o.dashboard.reload(
      { certFile: files.certFile, keyFile: files.keyFile, keyPassphrase: config.tls.keyPassphrase },
      (port) => probeStagedApp({ host: connectHostFor(config.dashboard.host), port, servername: config.domain, expected: chain[0] }),
    );
    if (problems.length > 0) return this.refused('dashboard', trigger, problems);
    return this.appliedNow('dashboard', trigger, chain[0], state, findings.warnings);
  }

  private refused(listener: ListenerName, trigger: string, problems: string[]): ReloadOutcome {
    this.o.metrics.tlsReloads.inc({ listener, result: 'refused' });
    this.o.logger.error({ listener, trigger, problems }, 'certificate_reload_refused');
    return { listener, result: 'refused', problems };
  }

  private appliedNow(listener: ListenerName, trigger: string, leaf: X509Certificate, state: string, warnings: string[]): ReloadOutcome {
    this.leaves.set(listener, leaf);
    this.applied.set(listener, state);
    this.o.metrics.tlsReloads.inc({ listener, result: 'applied' });
    for (const warning of warnings) this.o.logger.warn({ listener, warning }, 'certificate_reload_warning');
    this.o.logger.info({ listener, trigger, notAfter: new Date(leaf.validTo).toISOString(), subject: leaf.subject.replace(/\n/g, ', ') }, 'certificate_reloaded');
    return { listener, result: 'applied', problems: [] };
  }

  /** A warning per listener from EXPIRY_WARNING_DAYS out, at start, every few hours and after a reload. */
  checkExpiry(now = Date.now()): void {
    for (const [listener, days] of this.daysLeft(now)) {
      if (days < EXPIRY_WARNING_DAYS) {
        this.o.logger.warn({ listener, daysLeft: Math.floor(days), notAfter: new Date(this.leaves.get(listener)!.validTo).toISOString() }, 'certificate_expiring');
      }
    }
  }
}

function leafOf(certFile: string): X509Certificate {
  return new X509Certificate(readFileSync(certFile));
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}
