import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { jwtVerify } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import { MESSAGE_TYPE_STREAM, readEnvelope, writeAck, writeErrorReply } from '../../src/protocol/envelope.js';
import { decodeRecord } from '../../src/protocol/payload.js';
import { baselineEnv } from './baseline-env.js';

// What a straightforward implementation would be: Node's https server with mutual TLS, the `ws`
// package, every frame decoded inline on the main thread with the project's protobuf decoder, and
// each dashboard message built with JSON.stringify for each dashboard. Same wire protocols as ours, so
// the same harness and probes drive it.

const env = baselineEnv();
const tls = { cert: readFileSync(env.certFile), key: readFileSync(env.keyFile) };
const latin1 = new TextDecoder('latin1');
const EMPTY = new Uint8Array(0);

interface KnownValue {
  value: unknown;
  at: string;
}
const lastKnown = new Map<string, Map<string, KnownValue>>();
const connected = new Map<string, number>();
const watchers = new Map<string, Set<WebSocket>>();

const vehicles = createServer({ ...tls, ca: readFileSync(env.vehicleCaFile), requestCert: true, rejectUnauthorized: true });
const vehicleSockets = new WebSocketServer({ server: vehicles, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
vehicleSockets.on('connection', (ws, req) => {
  const peer = (req.socket as TLSSocket).getPeerCertificate();
  const vin = String(peer.subject?.CN ?? '').replace(/\./g, '-');
  if (vin === '') {
    ws.close(1008, 'no client certificate');
    return;
  }
  connected.set(vin, (connected.get(vin) ?? 0) + 1);
  ws.on('close', () => connected.set(vin, (connected.get(vin) ?? 1) - 1));
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(1003, 'binary frames only');
      return;
    }
    ws.send(handleFrame(vin, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
  });
});

function handleFrame(vin: string, frame: Uint8Array): Uint8Array {
  let envelope;
  try {
    envelope = readEnvelope(frame);
  } catch {
    return writeErrorReply(EMPTY);
  }
  if (envelope.messageType !== MESSAGE_TYPE_STREAM || envelope.stream === null) return writeAck(envelope.txid, envelope.topic);
  const topic = latin1.decode(envelope.topic);
  let record;
  try {
    record = decodeRecord(topic, envelope.stream.payload, vin);
  } catch {
    return writeErrorReply(envelope.txid);
  }
  const receivedAt = new Date().toISOString();
  const parsed: unknown = record.json === null ? null : JSON.parse(record.json);
  if (record.state !== null) {
    let state = lastKnown.get(vin);
    if (state === undefined) lastKnown.set(vin, (state = new Map()));
    for (const entry of record.state) state.set(entry.field, { value: JSON.parse(entry.value), at: record.createdAt ?? receivedAt });
  }
  const watching = watchers.get(vin);
  if (watching !== undefined) {
    for (const dashboard of watching) {
      dashboard.send(JSON.stringify({ type: 'record', vin, topic, receivedAt, record: parsed }));
    }
  }
  return writeAck(envelope.txid, envelope.topic);
}

let dashboards: Server | null = null;
if (env.dashboardPort > 0) {
  dashboards = createServer(tls);
  const dashboardSockets = new WebSocketServer({ server: dashboards, path: '/dashboard', perMessageDeflate: false });
  const secret = new TextEncoder().encode(env.jwtSecret);
  dashboardSockets.on('connection', (ws, req) => {
    const token = new URL(req.url ?? '/', 'https://localhost').searchParams.get('access_token') ?? '';
    const verified = jwtVerify(token, secret, { algorithms: ['HS256'], requiredClaims: ['exp'] });
    const mine = new Set<string>();
    ws.on('close', () => {
      for (const vin of mine) watchers.get(vin)?.delete(ws);
    });
    ws.on('message', (data: Buffer) => {
      verified.then(
        ({ payload }) => {
          const allowed = Array.isArray(payload.vins) ? (payload.vins as string[]) : [];
          const request = JSON.parse(data.toString('utf8')) as { type: string; vins: string[] };
          if (request.type !== 'subscribe') return;
          for (const vin of request.vins) {
            if (!allowed.includes('*') && !allowed.includes(vin)) {
              ws.send(JSON.stringify({ type: 'error', code: 'forbidden_vin', message: 'not in token', vin }));
              continue;
            }
            const state = Object.fromEntries(lastKnown.get(vin) ?? new Map());
            ws.send(JSON.stringify({ type: 'snapshot', vin, connected: (connected.get(vin) ?? 0) > 0, state }));
            mine.add(vin);
            let set = watchers.get(vin);
            if (set === undefined) watchers.set(vin, (set = new Set()));
            set.add(ws);
          }
        },
        () => ws.close(4401, 'invalid token'),
      );
    });
  });
  dashboards.listen(env.dashboardPort, env.dashboardHost);
}

vehicles.listen(env.port, env.host, () => process.stdout.write(`naive server listening on ${env.host}:${env.port}\n`));
process.once('SIGTERM', () => {
  for (const ws of vehicleSockets.clients) ws.terminate();
  vehicles.close();
  dashboards?.close();
  setTimeout(() => process.exit(0), 100);
});
