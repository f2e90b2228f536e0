// The harness starts PostgreSQL exactly as the tests do (Debian's binaries, a temp data directory, a
// free loopback port, as the `postgres` user when run as root).
export { TestPostgres as BenchPostgres } from '../../test/helpers/postgres-server.js';
