// The process handling lives with the load harness, which starts the same PostgreSQL for its
// scenario; tests import it from here as before.
export { TestPostgres } from '../../bench/servers/postgres-server.js';
