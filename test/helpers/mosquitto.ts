import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { freePort, spawnLogged, stopProcess, untilReady, type LocalProcess } from '../../tools/local-process.js';

/** Debian installs the broker in /usr/sbin, which is not on every user's PATH. */
const MOSQUITTO = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto';
const MOSQUITTO_PASSWD = existsSync('/usr/bin/mosquitto_passwd') ? '/usr/bin/mosquitto_passwd' : 'mosquitto_passwd';

export interface MosquittoOptions {
  /** TLS listener with this certificate and key (PEM files); with clientCaFile, clients need a certificate it issued. */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  /** Only this user may connect. */
  credentials?: { username: string; password: string };
}

/**
 * A real Mosquitto (Debian package) on a loopback port with a generated config, without persistence:
 * a restart loses every retained message, which is exactly what a crashed broker does to Home
 * Assistant. Stops only the process it started, by PID; restart() keeps the port.
 */
export class Mosquitto {
  private child: ChildProcess | null = null;
  private launched: LocalProcess | null = null;

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly options: MosquittoOptions,
  ) {}

  get url(): string {
    return `${this.options.tls ? 'mqtts' : 'mqtt'}://${this.options.tls ? 'localhost' : '127.0.0.1'}:${this.port}`;
  }

  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const broker = new Mosquitto(await freePort(), mkdtempSync(join(tmpdir(), 'fleet-telemetry-mosquitto-')), options);
    broker.writeConfig();
    await broker.launch();
    return broker;
  }

  private writeConfig(): void {
    const lines = [
      `listener ${this.port} 127.0.0.1`,
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      // Run as whoever runs the tests (as root, mosquitto would otherwise switch to its own user and
      // could not read the generated files).
      `user ${userInfo().username}`,
    ];
    if (this.options.credentials) {
      const passwordFile = join(this.dir, 'passwd');
      writeFileSync(passwordFile, '', { mode: 0o600 });
      const made = spawnSync(MOSQUITTO_PASSWD, ['-b', passwordFile, this.options.credentials.username, this.options.credentials.password], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`mosquitto_passwd failed (install mosquitto: scripts/install-test-deps.sh): ${made.stderr || made.error?.message}`);
      lines.push('allow_anonymous false', `password_file ${passwordFile}`);
    } else {
      lines.push('allow_anonymous true');
    }
    if (this.options.tls) lines.push(`certfile ${this.options.tls.certFile}`, `keyfile ${this.options.tls.keyFile}`);
    if (this.options.tls?.clientCaFile) lines.push(`cafile ${this.options.tls.clientCaFile}`, 'require_certificate true');
    writeFileSync(join(this.dir, 'mosquitto.conf'), `${lines.join('\n')}\n`, { mode: 0o600 });
  }

  async launch(): Promise<void> {
    const proc = spawnLogged(MOSQUITTO, ['-c', join(this.dir, 'mosquitto.conf')]);
    const child = proc.child;
    this.child = child;
    this.launched = proc;
    // A test that times out never reaches its cleanup, and mocha exits: the broker must not outlive us.
    const orphanGuard = (): void => {
      try {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    process.once('exit', orphanGuard);
    await untilReady(proc, { program: 'mosquitto', ready: /mosquitto version \S+ running/, timeoutMs: 10_000 });
    child.once('exit', () => process.off('exit', orphanGuard));
  }

  /** What the broker logged since it was last launched. */
  get output(): string {
    return this.launched?.output() ?? '';
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    // Mosquitto can miss a SIGTERM that arrives in its first moments; it must not hang a test.
    await stopProcess(child, 'SIGTERM', 2000);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SeenMessage {
  topic: string;
  payload: string;
  retain: boolean;
  at: number;
}

/**
 * A subscriber to everything, as Home Assistant would be: keeps every message and the retained state
 * per topic (the last retained payload; an empty one deletes the topic, as on a broker).
 */
export class Watcher {
  readonly messages: SeenMessage[] = [];
  readonly retained = new Map<string, string>();

  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, options: IClientOptions = {}, topic = '#'): Promise<Watcher> {
    // MQTT 5 with retain-as-published: live messages keep their retain flag, so the watcher can tell
    // retained state from events the way a broker does.
    const client = mqtt.connect(url, { reconnectPeriod: 200, connectTimeout: 5000, protocolVersion: 5, ...options });
    const watcher = new Watcher(client);
    client.on('message', (messageTopic, payload, packet) => {
      const text = payload.toString('utf8');
      watcher.messages.push({ topic: messageTopic, payload: text, retain: packet.retain, at: Date.now() });
      if (!packet.retain) return;
      if (text === '') watcher.retained.delete(messageTopic);
      else watcher.retained.set(messageTopic, text);
    });
    client.on('error', () => undefined);
    // Resubscribed on every connection, so a restarted broker's retained messages arrive again.
    client.on('connect', () => client.subscribe(topic, { qos: 1, rap: true }));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('watcher could not connect')), 10_000);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return watcher;
  }

  /** Messages on one topic, in arrival order. */
  on(topic: string): SeenMessage[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  async publish(topic: string, payload: string, retain = false): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, retain });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

export { eventually } from './eventually.js';
