// nats-server and the NATS cluster live in tools/, shared with the load harness (bench/): test
// helpers never import bench/.
export { NatsServer } from '../../tools/nats-server.js';
export { NatsCluster } from '../../tools/nats-cluster.js';
export { freePort } from '../../tools/local-process.js';
