import WebSocket from 'ws';

/**
 * Close politely, but never wait more than `graceMs` for the peer's close frame: a saturated server may
 * not answer in time, and the harness must stop by itself.
 */
export function closeSocket(socket: WebSocket, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) return resolve();
    socket.once('close', () => resolve());
    socket.close(1000);
    setTimeout(() => {
      socket.terminate();
      resolve();
    }, graceMs).unref();
  });
}
