import { createSecureContext } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import { LatencyRecorder } from '../stats/latency.js';
import { BenchCar, emptyCounters, type CarEnvironment } from './bench-car.js';
import type { FleetCommand, FleetReply, FleetWorkerData } from './fleet-protocol.js';

// One fleet thread: a share of the cars, driven by commands from the harness's main thread, so the
// load generator spreads over cores instead of queueing behind one event loop.

const data = workerData as FleetWorkerData;
const port = parentPort!;
const latency = new LatencyRecorder();
const errors: string[] = [];
let errorCount = 0;
const env: CarEnvironment = {
  url: data.url,
  servername: data.servername,
  counters: emptyCounters(),
  recordAckLatency: (ms) => latency.recordMs(ms),
  noteError: (message) => {
    errorCount++;
    if (errors.length < 5 && !errors.includes(message)) errors.push(message);
  },
};

const cars = data.cars.map((car, i) => {
  const context = createSecureContext({ cert: car.certPem, key: car.keyPem, ca: data.caChainPem });
  const address = data.localAddresses.length > 0 ? data.localAddresses[(data.firstIndex + i) % data.localAddresses.length] : '';
  return new BenchCar(car.vin, data.firstIndex + i + 1, context, address === '' ? undefined : address, env);
});

function unacked(): number {
  let total = 0;
  for (const car of cars) total += car.unacked;
  return total;
}

/** Cars before this index were connected by an earlier connect command (a fleet connected in waves). */
let connectedUpTo = 0;

async function connectAll(concurrency: number, upTo: number): Promise<void> {
  const end = Math.min(upTo, cars.length);
  let next = connectedUpTo;
  connectedUpTo = Math.max(connectedUpTo, end);
  const lane = async (): Promise<void> => {
    while (next < end) await cars[next++]!.connect();
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(0, end - next)) }, lane));
}

async function drain(timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (unacked() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return unacked();
}

async function handle(command: FleetCommand): Promise<FleetReply> {
  switch (command.type) {
    case 'connect':
      for (const car of cars) car.setMode(command.mode);
      await connectAll(command.concurrency, command.upTo ?? cars.length);
      return { id: command.id, type: 'done' };
    case 'mode':
      for (const car of cars) car.setMode(command.mode);
      return { id: command.id, type: 'done' };
    case 'counters':
      return { id: command.id, type: 'counters', counters: { ...env.counters }, unacked: unacked() };
    case 'resetLatency':
      latency.reset();
      return { id: command.id, type: 'done' };
    case 'drain':
      return { id: command.id, type: 'drained', unacked: await drain(command.timeoutMs) };
    case 'report':
      return {
        id: command.id,
        type: 'report',
        report: {
          counters: { ...env.counters },
          unacked: unacked(),
          ackLatency: latency.encode(),
          ackedPerCar: cars.map((car) => car.acked),
          errors: errorCount > errors.length ? [...errors, `(${errorCount} errors in all)`] : errors,
        },
      };
    case 'close':
      await Promise.all(cars.map((car) => car.stop()));
      return { id: command.id, type: 'done' };
  }
}

port.on('message', (command: FleetCommand) => {
  handle(command).then(
    (reply) => {
      port.postMessage(reply);
      if (command.type === 'close') port.close();
    },
    (error: Error) => port.postMessage({ id: command.id, type: 'failed', message: error.message }),
  );
});
