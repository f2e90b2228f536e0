import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/**
 * Summarises a V8 CPU profile (node --cpu-prof) of the server by function: self time of the main
 * thread's JavaScript, per record when --records is given. What BENCHMARKS.md's "main thread µs per
 * record" figures come from:
 *   node dist/bench/report/profile-summary.js artifacts/bench/profiles/<file>.cpuprofile --records N
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { records: { type: 'string' }, top: { type: 'string', default: '30' } },
});
const file = positionals[0];
if (file === undefined) {
  process.stderr.write('usage: profile-summary <file.cpuprofile> [--records N] [--top 30]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const totals = new Map<string, number>();
let busy = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  const node = byId.get(id)!;
  const name = node.callFrame.functionName || '(anonymous)';
  if (name === '(idle)' || name === '(program)') {
    if (name === '(idle)') idle += us;
    else busy += us;
  } else {
    busy += us;
  }
  const where = node.callFrame.url === '' ? '' : ` ${node.callFrame.url.replace(/^.*\/(src|dist|node_modules)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
  const key = `${name}${where}`;
  totals.set(key, (totals.get(key) ?? 0) + us);
}
const records = values.records === undefined ? null : Number(values.records);
const wall = profile.endTime - profile.startTime;
const per = (us: number): string => (records === null ? '' : `${(us / records).toFixed(2).padStart(7)} µs/record`);
console.log(`profile: ${(wall / 1e6).toFixed(1)} s wall, ${(busy / 1e6).toFixed(2)} s busy (not idle), ${(idle / 1e6).toFixed(2)} s idle ${per(busy)}`);
const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
for (const [key, us] of top) console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${per(us)}  ${key}`);
