import type { ServerKind } from '../servers/server-under-test.js';
import type { BenchReport, ResultServer, ScenarioName, ScenarioResult, TargetCheck } from './result.js';

const MiB = 2 ** 20;

/** ours / limit and ours / naive for the figures that compare servers. */
export function ratiosOf(results: ScenarioResult[]): BenchReport['ratios'] {
  const out: BenchReport['ratios'] = [];
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const of = (kind: ServerKind): ScenarioResult | undefined => results.find((r) => r.scenario === scenario && r.server === kind && r.completed);
    if (isNatsScenario(scenario)) {
      out.push(...natsRatios(scenario, results));
      continue;
    }
    if (scenario === 'postgres') {
      out.push(...postgresRatios(results));
      continue;
    }
    const ours = of('ours');
    if (ours === undefined) continue;
    const ratio = (other: ScenarioResult | undefined, pick: (r: ScenarioResult) => number): number | null => {
      if (other === undefined) return null;
      const base = pick(other);
      return base > 0 ? Math.round((pick(ours) / base) * 100) / 100 : null;
    };
    const metrics: Array<[string, (r: ScenarioResult) => number]> = [
      ['throughput', (r) => r.throughput],
      ['records per server CPU second', (r) => r.recordsPerServerCpuSecond],
      ['server CPU per record', (r) => (r.recordsPerServerCpuSecond > 0 ? 1e6 / r.recordsPerServerCpuSecond : 0)],
      ['ack p99', (r) => r.ack.p99],
      ['peak RSS', (r) => r.peakRssBytes],
    ];
    if (scenario === 'fanout') metrics.push(['dashboard messages per server CPU second', (r) => Number(r.details.dashboardMessagesPerServerCpuSecond ?? 0)]);
    for (const [metric, pick] of metrics) out.push({ scenario, metric, oursOverLimit: ratio(of('limit'), pick), oursOverNaive: ratio(of('naive'), pick) });
  }
  return out;
}

export function isNatsScenario(scenario: ScenarioName): boolean {
  return scenario === 'nats' || scenario === 'nats-saturation';
}

/** Two instances on NATS over one with the in-process bus, at the same offered load. */
function natsRatios(scenario: ScenarioName, results: ScenarioResult[]): BenchReport['ratios'] {
  const of = (server: ResultServer): ScenarioResult | undefined => results.find((r) => r.scenario === scenario && r.server === server && r.completed);
  const nats = of('ours-nats');
  const inProcess = of('ours');
  if (nats === undefined || inProcess === undefined) return [];
  const metrics: Array<[string, (r: ScenarioResult) => number]> = [
    ['throughput', (r) => r.throughput],
    ['records per server CPU second', (r) => r.recordsPerServerCpuSecond],
    ['peak RSS', (r) => r.peakRssBytes],
  ];
  // Under saturation each side's best stage may be at a different window, so its latencies do not compare.
  if (scenario === 'nats') metrics.splice(2, 0, ['ack p50', (r) => r.ack.p50], ['ack p99', (r) => r.ack.p99]);
  if (nats.dashboard !== null && inProcess.dashboard !== null) metrics.push(['dashboard p99', (r) => r.dashboard?.p99 ?? 0]);
  return metrics.map(([metric, pick]) => {
    const base = pick(inProcess);
    return { scenario, metric, oursOverLimit: null, oursOverNaive: null, natsOverInProcess: base > 0 ? Math.round((pick(nats) / base) * 100) / 100 : null };
  });
}

/** The PostgreSQL sink's cost: the same steady run with the sink over without it. */
function postgresRatios(results: ScenarioResult[]): BenchReport['ratios'] {
  const of = (server: ResultServer): ScenarioResult | undefined => results.find((r) => r.scenario === 'postgres' && r.server === server && r.completed);
  const withSink = of('ours-postgres');
  const without = of('ours');
  if (withSink === undefined || without === undefined) return [];
  const metrics: Array<[string, (r: ScenarioResult) => number]> = [
    ['throughput', (r) => r.throughput],
    ['records per server CPU second', (r) => r.recordsPerServerCpuSecond],
    ['ack p50', (r) => r.ack.p50],
    ['ack p99', (r) => r.ack.p99],
    ['peak RSS', (r) => r.peakRssBytes],
  ];
  return metrics.map(([metric, pick]) => {
    const base = pick(without);
    return { scenario: 'postgres' as const, metric, oursOverLimit: null, oursOverNaive: null, sinkOverWithout: base > 0 ? Math.round((pick(withSink) / base) * 100) / 100 : null };
  });
}

/** The issue's targets, checked against what this run measured (only those it measured). */
export function checkTargets(results: ScenarioResult[], ratios: BenchReport['ratios']): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ours = (scenario: ScenarioName): ScenarioResult | undefined => results.find((r) => r.scenario === scenario && r.server === 'ours');
  const ratio = (scenario: ScenarioName, metric: string) => ratios.find((r) => r.scenario === scenario && r.metric === metric);

  const saturation = ratio('saturation', 'throughput');
  if (saturation?.oursOverLimit != null) {
    checks.push({ name: 'saturation throughput vs limit', target: '>= 0.5x', actual: `${saturation.oursOverLimit}x`, met: saturation.oursOverLimit >= 0.5 });
  }
  if (saturation?.oursOverNaive != null) {
    checks.push({ name: 'saturation throughput vs naive', target: '>= 2x', actual: `${saturation.oursOverNaive}x`, met: saturation.oursOverNaive >= 2 });
  }
  // Issue 11's targets: what one record costs, against both baselines of the same run.
  const perCpu = ratio('saturation', 'records per server CPU second');
  if (perCpu?.oursOverLimit != null) {
    checks.push({ name: 'saturation records per server CPU second vs limit', target: '>= 0.35x', actual: `${perCpu.oursOverLimit}x`, met: perCpu.oursOverLimit >= 0.35 });
  }
  if (perCpu?.oursOverNaive != null) {
    checks.push({ name: 'saturation records per server CPU second vs naive', target: '>= 4x', actual: `${perCpu.oursOverNaive}x`, met: perCpu.oursOverNaive >= 4 });
  }
  if (saturation?.oursOverLimit != null) {
    checks.push({ name: 'saturation throughput vs limit (issue 11)', target: '>= 0.6x', actual: `${saturation.oursOverLimit}x`, met: saturation.oursOverLimit >= 0.6 });
  }
  const steadyPerCpu = ratio('steady', 'records per server CPU second');
  if (steadyPerCpu?.oursOverLimit != null) {
    checks.push({ name: 'steady records per server CPU second vs limit', target: '>= 0.8x', actual: `${steadyPerCpu.oursOverLimit}x`, met: steadyPerCpu.oursOverLimit >= 0.8 });
  }
  const failed = (name: string, target: string): void => {
    checks.push({ name, target, actual: 'run failed', met: false });
  };
  const steady = ours('steady');
  if (steady !== undefined && !steady.completed) failed(`steady (${steady.cars} cars)`, 'ack p99 < 20 ms, dashboard p99 < 50 ms, RSS < 1 GiB, no loss');
  if (steady !== undefined && steady.completed) {
    const scale = `${steady.cars} cars`;
    checks.push({ name: `steady ack p99 (${scale})`, target: '< 20 ms', actual: `${steady.ack.p99} ms`, met: steady.completed && steady.ack.p99 < 20 });
    if (steady.dashboard !== null) {
      checks.push({ name: `steady car->dashboard p99 (${scale})`, target: '< 50 ms', actual: `${steady.dashboard.p99} ms`, met: steady.dashboard.p99 < 50 });
    } else {
      checks.push({ name: `steady car->dashboard p99 (${scale})`, target: '< 50 ms', actual: 'not measured', met: false });
    }
    checks.push({ name: `steady server RSS (${scale})`, target: '< 1 GiB', actual: `${(steady.peakRssBytes / MiB).toFixed(0)} MiB`, met: steady.peakRssBytes < 2 ** 30 });
    checks.push({ name: `steady loss (${scale})`, target: '0', actual: String(steady.counts.lost + steady.counts.dashboardLost), met: steady.completed && steady.counts.lost + steady.counts.dashboardLost === 0 });
  }
  const sparseCpu = ratio('sparse', 'server CPU per record');
  if (sparseCpu?.oursOverLimit != null) {
    checks.push({ name: `sparse (${ours('sparse')?.cars} cars at 1 frame/s): CPU per record vs limit`, target: '<= 2x', actual: `${sparseCpu.oursOverLimit}x`, met: sparseCpu.oursOverLimit <= 2 });
  }
  const sparseAck = ratio('sparse', 'ack p99');
  if (sparseAck?.oursOverLimit != null) {
    checks.push({ name: `sparse (${ours('sparse')?.cars} cars at 1 frame/s): ack p99 vs limit`, target: '<= 3x', actual: `${sparseAck.oursOverLimit}x`, met: sparseAck.oursOverLimit <= 3 });
  }
  const idle = ours('idle-memory');
  if (idle !== undefined && !idle.completed) failed('memory per idle car (idle-memory)', '<= 16 KB');
  if (idle !== undefined && idle.completed) {
    const perCar = idle.details.rssPerIdleCarBytes as number;
    checks.push({ name: 'memory per idle car (idle-memory, RSS slope after GC, median of rounds)', target: '<= 16 KB', actual: `${(perCar / 1000).toFixed(1)} KB (${(perCar / 1024).toFixed(1)} KiB)`, met: perCar <= 16_000 });
  }
  const storm = ours('storm');
  if (storm !== undefined && !storm.completed) failed(`connect storm (${storm.cars} cars)`, '<= 60 s, no errors; < 50 KB per idle car');
  if (storm !== undefined && storm.completed) {
    const seconds = storm.details.readySeconds as number;
    const errors = storm.counts.connectFailures + storm.counts.disconnects + storm.counts.errorReplies;
    checks.push({ name: `connect storm (${storm.cars} cars) connected and acked`, target: '<= 60 s, no errors', actual: `${Number.isFinite(seconds) ? seconds : 'not all'} s, ${errors} errors`, met: storm.completed && seconds <= 60 && errors === 0 });
    const perCar = storm.details.rssPerIdleCarBytes as number;
    checks.push({ name: 'memory per idle connected car', target: '< 50 KB', actual: `${(perCar / 1000).toFixed(1)} KB`, met: perCar < 50_000 });
  }
  return checks;
}

export function lossIn(results: ScenarioResult[]): boolean {
  return results.some((r) => r.counts.lost > 0 || r.counts.dashboardLost > 0 || (r.counts.storedMissing ?? 0) > 0);
}

/** The human table: one block per scenario, one row per server, then ratios and targets. */
export function renderReport(report: BenchReport): string {
  const lines: string[] = [];
  const m = report.machine;
  lines.push(`Machine: ${m.nproc} cores, ${m.cpuModel}, Node ${m.node}, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM, open files ${m.openFilesLimit}`);
  for (const scenario of [...new Set(report.results.map((r) => r.scenario))]) {
    const rows = report.results.filter((r) => r.scenario === scenario);
    lines.push('', `== ${scenario} (${rows[0]!.cars} cars) ==`);
    const header = ['server', 'rec/s', 'rec/CPU-s', 'srv CPU', 'hns CPU', 'ack p50', 'p90', 'p99', 'p99.9', 'max', 'dash p50', 'dash p99', 'peak RSS', 'lost', 'dash lost'];
    const table: string[][] = [header];
    for (const r of rows) {
      if (!r.completed) {
        table.push([r.server, 'FAILED']);
        continue;
      }
      table.push([
        r.server,
        r.throughput.toFixed(0),
        r.recordsPerServerCpuSecond.toFixed(0),
        r.serverCpuCores.toFixed(2),
        r.harnessCpuCores.toFixed(2),
        ms(r.ack.p50), ms(r.ack.p90), ms(r.ack.p99), ms(r.ack.p999), ms(r.ack.max),
        r.dashboard ? ms(r.dashboard.p50) : '-',
        r.dashboard ? ms(r.dashboard.p99) : '-',
        `${(r.peakRssBytes / MiB).toFixed(0)} MiB`,
        String(r.counts.lost),
        r.dashboard ? `${r.counts.dashboardLost}/${r.counts.dashboardExpected}` : '-',
      ]);
    }
    lines.push(...formatTable(table));
    for (const r of rows) {
      if (!r.completed) lines.push(`  ${r.server}: FAILED: ${(r.failure ?? '').split('\n')[0]}`);
      const extra = r.completed ? scenarioLine(r) : '';
      if (extra !== '') lines.push(`  ${r.server}: ${extra}`);
      for (const note of r.notes) lines.push(`  ${r.server}: note: ${note}`);
    }
    const ratios = report.ratios.filter((x) => x.scenario === scenario);
    if (ratios.length > 0 && isNatsScenario(scenario)) {
      lines.push('  ratios (ours-nats/ours in-process): ' + ratios.map((x) => `${x.metric} ${fmtRatio(x.natsOverInProcess ?? null)}`).join('; '));
    } else if (ratios.length > 0 && scenario === 'postgres') {
      lines.push('  ratios (with the PostgreSQL sink / without): ' + ratios.map((x) => `${x.metric} ${fmtRatio(x.sinkOverWithout ?? null)}`).join('; '));
    } else if (ratios.length > 0) {
      lines.push('  ratios (ours/limit, ours/naive): ' + ratios.map((x) => `${x.metric} ${fmtRatio(x.oursOverLimit)}, ${fmtRatio(x.oursOverNaive)}`).join('; '));
    }
  }
  if (report.targets.length > 0) {
    lines.push('', '== targets (ours) ==');
    lines.push(...formatTable([['target', 'wanted', 'measured', ''], ...report.targets.map((t) => [t.name, t.target, t.actual, t.met ? 'met' : 'MISSED'])]));
  }
  lines.push('', report.lossDetected ? 'LOSS DETECTED: some records were never acked, never reached a dashboard, or were acked and are not in the JetStream stream.' : 'No loss: every record sent was acked, and every acked record reached the dashboards watching it.');
  return lines.join('\n');
}

function scenarioLine(r: ScenarioResult): string {
  const d = r.details;
  switch (r.scenario) {
    case 'saturation': {
      const stages = (d.stages as Array<{ window: number; throughput: number; serverCpuCores: number; serverAckP99: number | null }> | undefined) ?? [];
      return `stages (window=rec/s@server cores[, server-side ack p99]) ${stages
        .map((s) => `w${s.window}=${s.throughput}/s@${s.serverCpuCores}${s.serverAckP99 != null ? `[${s.serverAckP99}ms]` : ''}`)
        .join(' ')}`;
    }
    case 'nats':
    case 'nats-saturation':
      return natsLine(r);
    case 'fanout': {
      const serverAck = d.serverAckLatencyMs as { p50: number | null; p99: number | null } | null | undefined;
      return `${d.dashboards} dashboards x ${d.vinsPerDashboard} VINs (each car watched by ${d.watchersPerCar}): ${d.dashboardMessagesPerSecond} dashboard messages/s, ` +
        `${d.dashboardMessagesPerServerCpuSecond} per server CPU second` + (serverAck ? `; ack inside the server p99 ${serverAck.p99 ?? '-'} ms` : '');
    }
    case 'sparse': {
      const serverAck = d.serverAckLatencyMs as { p50: number | null; p99: number | null } | null | undefined;
      const rounds = (d.rounds as Array<{ serverCpuMicrosPerRecord: number | null }> | undefined) ?? [];
      const overLimit = (d.cpuPerRecordOverLimitByRound as Array<number | null> | undefined) ?? [];
      const overOther = (d.cpuPerRecordOverOtherByRound as Array<number | null> | undefined) ?? [];
      return `server CPU per record ${d.serverCpuMicrosPerRecord ?? '-'} µs` +
        (rounds.length > 1 ? ` (median of ${rounds.length} rounds: ${rounds.map((r) => r.serverCpuMicrosPerRecord ?? '-').join(', ')} µs)` : '') +
        (overLimit.length > 1 ? `; vs the limit server's round beside it ${overLimit.map((x) => (x === null ? '-' : `${x}x`)).join(', ')}` : '') +
        (overOther.length > 1 ? `; vs the other build's round beside it ${overOther.map((x) => (x === null ? '-' : `${x}x`)).join(', ')} (median ${medianOf(overOther)})` : '') +
        (serverAck ? `; ack inside the server p50 ${serverAck.p50 ?? '-'} ms, p99 ${serverAck.p99 ?? '-'} ms` : '');
    }
    case 'idle-memory': {
      const rounds = (d.rounds as Array<{ rssPerCarBytes: number; heapPerCarBytes?: number; externalPerCarBytes?: number }> | undefined) ?? [];
      const kib = (bytes: number | null | undefined): string => (bytes == null ? '-' : (bytes / 1024).toFixed(2));
      return `RSS per idle car (slope over ${d.waves} waves, after GC), median ${kib(d.rssPerIdleCarBytes as number | null)} KiB over ${rounds.length} rounds (${rounds.map((f) => kib(f.rssPerCarBytes)).join(', ')}); before the GC ${kib(d.rssBeforeGcPerIdleCarBytes as number | null)} KiB` +
        `; V8 heap in use ${kib(d.heapUsedPerIdleCarBytes as number | null)} KiB (its pages ${kib(d.heapTotalPerIdleCarBytes as number | null)} KiB)` +
        (d.externalPerIdleCarBytes != null ? `, external ${kib(d.externalPerIdleCarBytes as number)} KiB` : '');
    }
    case 'storm':
      return `all connected+acked: ${d.allConnectedAndAcked ? `${d.readySeconds} s` : 'NO'}; connect failures ${r.counts.connectFailures}; RSS per idle car ${((d.rssPerIdleCarBytes as number) / 1000).toFixed(1)} KB`;
    default: {
      const parts: string[] = [];
      const serverAck = d.serverAckLatencyMs as { p50: number | null; p99: number | null } | null | undefined;
      if (serverAck) parts.push(`ack latency inside the server (its /metrics) p50 ${serverAck.p50 ?? '-'} ms, p99 ${serverAck.p99 ?? '-'} ms`);
      if (d.valuesStored !== undefined) parts.push(`values in PostgreSQL after the run ${String(d.valuesStored)} (${String(d.carsStored)} cars); PostgreSQL's own CPU over the run ${String(d.databaseCpuCores)} cores`);
      if (r.scenario === 'soak') parts.push(`RSS growth first->last quarter ${(((d.rssGrowthFirstToLastQuarterBytes as number) ?? 0) / MiB).toFixed(1)} MiB`);
      if (r.counts.resent > 0 || r.counts.disconnects > 0) parts.push(`resent ${r.counts.resent}, disconnects ${r.counts.disconnects}`);
      return parts.join('; ');
    }
  }
}

/** Per process CPU and memory, JetStream's share of the ack latency and the stream count. */
function natsLine(r: ScenarioResult): string {
  const d = r.details;
  const parts: string[] = [];
  const processes = (d.processes as Array<{ name: string; cpuCores: number; peakRssBytes: number }> | undefined) ?? [];
  if (processes.length > 0) parts.push(processes.map((p) => `${p.name} ${p.cpuCores.toFixed(2)} cores ${(p.peakRssBytes / MiB).toFixed(0)} MiB`).join(', '));
  const stages = (d.stages as Array<{ window: number; throughput: number; serverCpuCores: number; ackP99: number }> | undefined) ?? [];
  if (stages.length > 0) parts.push(`stages ${stages.map((s) => `w${s.window}=${s.throughput}/s@${s.serverCpuCores}[p99 ${s.ackP99}ms]`).join(' ')}`);
  const inside = (d.serverAckLatencyMs as Array<{ name: string; p50: number | null; p99: number | null }> | undefined) ?? [];
  if (inside.length > 0) parts.push(`ack inside the server ${inside.map((x) => `${x.name} p50 ${x.p50 ?? '-'} p99 ${x.p99 ?? '-'} ms`).join(', ')}`);
  const publish = (d.busPublishLatencyMs as Array<{ name: string; p50: number | null; p99: number | null }> | undefined) ?? [];
  if (publish.some((x) => x.p50 !== null)) parts.push(`JetStream publish->confirm ${publish.map((x) => `${x.name} p50 ${x.p50 ?? '-'} p99 ${x.p99 ?? '-'} ms`).join(', ')}`);
  const stream = d.stream as { carRecords: number; acked: number; missing: number; extra: number } | undefined;
  if (stream !== undefined) parts.push(`stream holds ${stream.carRecords} car records for ${stream.acked} acked: ${stream.missing} missing, ${stream.extra} stored but not acked`);
  if (d.dashboardsOn !== undefined) parts.push(String(d.dashboardsOn));
  if (r.counts.resent > 0 || r.counts.disconnects > 0 || r.counts.errorReplies > 0) parts.push(`resent ${r.counts.resent}, disconnects ${r.counts.disconnects}, error replies ${r.counts.errorReplies}`);
  return parts.join('; ');
}

function ms(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(value >= 10 ? 1 : 2);
}

function fmtRatio(value: number | null): string {
  return value === null ? '-' : `${value}x`;
}

function formatTable(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => '  ' + row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd());
}

/** The median of the ratios a run has (null rounds left out), as `1.234x`; '-' without any. */
function medianOf(ratios: Array<number | null>): string {
  const known = ratios.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (known.length === 0) return '-';
  const mid = known.length >> 1;
  const median = known.length % 2 === 1 ? known[mid]! : (known[mid - 1]! + known[mid]!) / 2;
  return `${median.toFixed(3)}x`;
}
