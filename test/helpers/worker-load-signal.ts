/** The BroadcastChannel test/helpers/slow-loading-decode-worker announces its loaded modules on. */
export const SLOW_WORKER_LOADED = 'fleet-telemetry-test-slow-worker-loaded';
