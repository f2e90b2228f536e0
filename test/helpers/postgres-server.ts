// PostgreSQL lives in tools/, shared with the load harness (bench/): test helpers never import bench/.
export { TestPostgres } from '../../tools/postgres-server.js';
