import { readEnvelope, writeAck, writeErrorReply } from '../../src/protocol/envelope.js';
import uWS from '../../src/uws/uws.js';
import { listenPort } from '../../src/uws/uws.js';
import { baselineEnv } from './baseline-env.js';

// The ceiling: a uWS SSLApp with mutual TLS that acks every frame and does nothing else. Reading the
// envelope's txid and topic is the least any correct server must do to address its ack; the protobuf
// payload is never touched.

const env = baselineEnv();
const EMPTY = new Uint8Array(0);

const app = uWS.SSLApp({ cert_file_name: env.certFile, key_file_name: env.keyFile, ca_file_name: env.vehicleCaFile });
app.ws('/*', {
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  compression: uWS.DISABLED,
  message: (ws, message, isBinary) => {
    if (!isBinary) return;
    let reply: Uint8Array;
    try {
      const envelope = readEnvelope(new Uint8Array(message));
      reply = writeAck(envelope.txid, envelope.topic);
    } catch {
      reply = writeErrorReply(EMPTY);
    }
    ws.send(reply, true);
  },
});

app.listen(env.host, env.port, (socket) => {
  if (socket === false) {
    process.stderr.write(`limit server: cannot listen on ${env.host}:${env.port}\n`);
    process.exit(1);
  }
  process.stdout.write(`limit server listening on ${env.host}:${listenPort(socket)}\n`);
  process.once('SIGTERM', () => {
    uWS.us_listen_socket_close(socket);
    app.close();
    setTimeout(() => process.exit(0), 100);
  });
});
