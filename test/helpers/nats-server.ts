// The process handling lives with the load harness, which starts the same nats-server for its NATS
// scenario; tests import it from here as before.
export { NatsServer } from '../../bench/servers/nats-server.js';
export { NatsCluster } from '../../bench/servers/nats-cluster.js';
export { freePort } from '../../tools/local-process.js';
