// First: sets uWS's header limit before the native module reads it.
import './uws-env.js';
import uWS from 'uWebSockets.js';

export default uWS;
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';

/**
 * uWS has res.getX509Certificate() on SSLApp responses (PEM of the verified client certificate, '' when
 * the client sent none) but leaves it out of index.d.ts; its maintainer says the API may change, so it
 * is reached through this one function.
 */
export function clientCertificatePem(res: import('uWebSockets.js').HttpResponse): string {
  const reader = (res as unknown as { getX509Certificate?: () => string | ArrayBuffer }).getX509Certificate;
  if (typeof reader !== 'function') {
    throw new Error('uWebSockets.js build lacks getX509Certificate(): the vehicle listener cannot identify cars');
  }
  const pem = reader.call(res);
  return typeof pem === 'string' ? pem : Buffer.from(pem).toString('latin1');
}

/** The port a listen socket is bound to (port 0 asks the OS for one). */
export function listenPort(socket: import('uWebSockets.js').us_listen_socket): number {
  return uWS.us_socket_local_port(socket);
}

/**
 * Bind an app and resolve with its listen socket and bound port; `what` names the listener in the error
 * an operator sees when the port is taken.
 */
export function listenOn(
  app: import('uWebSockets.js').TemplatedApp,
  host: string,
  port: number,
  what: string,
): Promise<{ socket: import('uWebSockets.js').us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (socket === false) reject(new Error(`${what} could not bind ${host}:${port}`));
      else resolve({ socket, port: listenPort(socket) });
    });
  });
}
