// `npm run test:fast`: the inner loop. Unit tests, plus the integration tests that run the real
// server in this process (real TLS, uWS and worker threads) and start no other program: no
// nats-server, mosquitto, PostgreSQL, Prometheus, Chromium, child server or load harness. Slow
// in-process tests (vehicle-keepalive waits out real ping timeouts) stay in the full suite.
// `npm test` (what the README's test command and CI run) still runs everything.
const IN_PROCESS_INTEGRATION = [
  'certificate-reload',
  'dashboard', // its in_process-bus half; the NATS half is left out by the grep below
  'dashboard-tesla',
  'tesla-fleet-api',
  'tesla-token-server',
  'vehicle-ingress',
];
module.exports = {
  spec: ['dist/test/unit/**/*.test.js', ...IN_PROCESS_INTEGRATION.map((name) => `dist/test/integration/${name}.test.js`)],
  grep: 'dashboard end to end, nats bus',
  invert: true,
  timeout: 20000,
  recursive: true,
  exit: true,
};
