import decode from '../../workers/decode-worker.js';
import { SLOW_WORKER_LOADED } from './worker-load-signal.js';

// A worker whose modules take a while to load, as on a busy machine: a pool closed meanwhile must let it
// finish loading before terminating it.
await new Promise((resolve) => setTimeout(resolve, 400));
const loaded = new BroadcastChannel(SLOW_WORKER_LOADED);
loaded.postMessage('loaded');
loaded.close();

export default decode;
