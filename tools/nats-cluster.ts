import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort, spawnLogged, stopProcess, untilReady } from './local-process.js';
import { sampleProcess, type ProcSample } from './proc-stats.js';

const NATS_SERVER = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
const CLUSTER_NAME = 'fleet-telemetry-test';

/** One node of the cluster: its own client and route ports and store, restartable on the same ones. */
class ClusterNode {
  child: ChildProcess | null = null;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly routePort: number,
    readonly storeDir: string,
    private readonly routes: string[],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  launch(): Promise<void> {
    const proc = spawnLogged(
      NATS_SERVER,
      ['-a', '127.0.0.1', '-p', String(this.port), '-n', this.name, '-js', '-sd', this.storeDir,
        '--cluster_name', CLUSTER_NAME, '--cluster', `nats://127.0.0.1:${this.routePort}`, '--routes', this.routes.join(',')],
    );
    this.child = proc.child;
    return untilReady(proc, { program: 'nats-server', label: `nats-server ${this.name}`, ready: /Server is ready/, timeoutMs: 15_000 });
  }

  /** SIGKILL: a node that dies, not one that says goodbye. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    await stopProcess(child, 'SIGKILL');
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    await stopProcess(child, 'SIGTERM');
  }
}

/**
 * Three (or more) Debian nats-server processes on loopback forming one JetStream cluster, each with
 * its own store. Only the processes started here are stopped, by PID. A node can be killed and
 * brought back on the same ports and store, as a crashed server restarted by its supervisor would be.
 */
export class NatsCluster {
  private constructor(readonly nodes: ClusterNode[]) {}

  /** Every node's client URL, comma-separated: NATS_URL for the server. */
  get url(): string {
    return this.nodes.map((node) => node.url).join(',');
  }

  static async start(size = 3): Promise<NatsCluster> {
    const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })));
    const nodes = ports.map(
      (p, i) =>
        new ClusterNode(
          `node-${i + 1}`,
          p.client,
          p.route,
          mkdtempSync(join(tmpdir(), `fleet-telemetry-nats-${i + 1}-`)),
          ports.filter((_, j) => j !== i).map((other) => `nats://127.0.0.1:${other.route}`),
        ),
    );
    const cluster = new NatsCluster(nodes);
    try {
      await Promise.all(nodes.map((node) => node.launch()));
      await cluster.waitForJetStream();
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  /** Until JetStream can place a stream on every node (meta leader elected, all peers known). */
  async waitForJetStream(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown = null;
    const probe = `CLUSTER_PROBE_${process.pid}`;
    while (Date.now() < deadline) {
      const nc = await connect({ servers: this.nodes.filter((n) => n.running).map((n) => n.url), reconnect: false }).catch((error: unknown) => {
        lastError = error;
        return null;
      });
      if (nc !== null) {
        try {
          const jsm = await jetstreamManager(nc);
          await jsm.streams.add({ name: probe, subjects: [`${probe.toLowerCase()}.>`], num_replicas: this.nodes.length });
          await jsm.streams.delete(probe);
          return;
        } catch (error) {
          lastError = error;
        } finally {
          await nc.close();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`the NATS cluster cannot place a ${this.nodes.length}-replica stream after ${timeoutMs} ms: ${String(lastError)}`);
  }

  /** CPU and memory of every running node, from /proc, summed. */
  sample(): ProcSample {
    const samples = this.nodes.filter((n) => n.running).map((n) => sampleProcess(n.child!.pid!));
    return samples.reduce((sum, s) => ({ ...s, cpuSeconds: sum.cpuSeconds + s.cpuSeconds, rssBytes: sum.rssBytes + s.rssBytes, peakRssBytes: sum.peakRssBytes + s.peakRssBytes }));
  }

  async dispose(): Promise<void> {
    for (const node of this.nodes) {
      await node.stop();
      rmSync(node.storeDir, { recursive: true, force: true });
    }
  }
}

export type { ClusterNode };
