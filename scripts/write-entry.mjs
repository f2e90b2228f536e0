// The design card runs the server as `node dist/main.js`; tsc keeps the source layout (dist/src/main.js),
// so the build drops a one-line entry at the documented path.
import { writeFileSync } from 'node:fs';
writeFileSync(new URL('../dist/main.js', import.meta.url), "import './src/main.js';\n");
