/**
 * `npm run bench [-- --quick] [-- --only realpath|latency|throughput|idle|embedded|retention|tokens]`: the real
 * path of issue #15 (`npm start` against HTTP fakes, beside its floor, and the old workload there against the
 * lifecycle worker), the four scenarios of issue #8, retention over a million ended blogs (issue #20) and the token
 * budget of issue #19 (tokens.bench.ts) in one run; a table on stdout, bench/results/bench.json and bench.svg. With
 * --quick the files are bench.quick.*, with --only bench.<scenario>.*, so neither replaces the full run's.
 * PostgreSQL from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; every scenario gets a fresh
 * database, dropped afterwards.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ensureDist } from '../scripts/dist.fresh.mjs';
import { runEmbedded, type EmbeddedResult } from './embedded.bench';
import { runIdle, type IdleResult } from './idle.bench';
import { runLatency, type LatencyResult } from './latency.bench';
import { describeMachine } from './lib/machine';
import { renderChart, type Panel } from './lib/chart';
import { round } from './lib/stats';
import { runRealPath, type RealPathResult } from './realpath.bench';
import { runRealPathLegacy, type RealPathLegacyResult } from './realpath.legacy.bench';
import { runRetention, type RetentionResult } from './retention.bench';
import { runThroughput, type ThroughputResult } from './throughput.bench';
import { runTokens, type TokensResult } from './tokens.bench';

const SCENARIOS = ['realpath', 'latency', 'throughput', 'idle', 'embedded', 'retention', 'tokens'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
const quick = values.quick;
const only = values.only as Scenario | undefined;
if (only && !SCENARIOS.includes(only)) {
  console.error(`--only must be one of ${SCENARIOS.join(', ')}`);
  process.exit(2);
}
const wanted = (s: Scenario) => !only || only === s;
const say = (line: string) => console.log(line);

const machine = await describeMachine();
const started = Date.now();
const results: {
  realpath?: RealPathResult;
  realpathLegacy?: RealPathLegacyResult;
  latency?: LatencyResult;
  throughput?: ThroughputResult;
  idle?: IdleResult;
  embedded?: EmbeddedResult;
  retention?: RetentionResult;
  tokens?: TokensResult;
} = {};
// `npm start` runs the compiled build: build dist/ here, once, if stale, so that the starts never build (and never at
// the same time); the build's time stays out of the figures.
if (wanted('realpath') || wanted('tokens')) ensureDist({ log: say });
if (wanted('realpath')) {
  results.realpath = await runRealPath(quick, say);
  results.realpathLegacy = await runRealPathLegacy(quick, say);
}
if (wanted('latency')) results.latency = await runLatency(quick, say);
if (wanted('throughput')) results.throughput = await runThroughput(quick, say);
if (wanted('idle')) results.idle = await runIdle(quick, say);
if (wanted('embedded')) results.embedded = await runEmbedded(quick, say);
if (wanted('retention')) results.retention = await runRetention(quick, say);
if (wanted('tokens')) results.tokens = await runTokens(quick, say);

type Row = { scenario: string; figure: string; value: string; target: string; met: string };
const rows: Row[] = [];
const add = (scenario: string, figure: string, value: string, target = '', met?: boolean) =>
  rows.push({ scenario, figure, value, target, met: met === undefined ? '' : met ? 'yes' : 'NO' });
const x = (r: number) => `${round(r, 2)}x`;
const targets: Record<string, boolean> = {};

if (results.realpath) {
  for (const l of results.realpath.levels) {
    const n = l.concurrency;
    const ms = (s: { p50: number; p95: number; max: number }) => `${round(s.p50)}/${round(s.p95)}/${round(s.max)} ms`;
    add('real path', `${n} concurrent: floor p50/p95/max`, ms(l.floorMs));
    const target = n === 60 ? 1.2 : n === 200 ? 1.5 : undefined;
    add(
      'real path',
      `${n} concurrent: inkwell p50/p95/max`,
      `${ms(l.inkwellMs)} (${x(l.vsFloor.p50)}/${x(l.vsFloor.p95)}/${x(l.vsFloor.max)} floor)`,
      target ? `p95 ≤ ${target}x floor` : '',
      target ? (targets[`realPathP95At${n}`] = l.vsFloor.p95 <= target) : undefined,
    );
    add(
      'real path',
      `${n} concurrent: per stage p50`,
      Object.entries(l.stagesP50Ms)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    );
    add(
      'real path',
      `${n} concurrent: providers p50 (article/image/wix call)`,
      `${l.providerP50Ms.article}/${l.providerP50Ms.image}/${l.providerP50Ms.wixCall} ms`,
    );
    add(
      'real path',
      `${n} concurrent: event delay after its \`at\` (the transition, before its commit), p50/p95`,
      `${round(l.eventDelayMs.p50, 1)}/${round(l.eventDelayMs.p95, 1)} ms`,
    );
    add(
      'real path',
      `${n} concurrent: event delay after its outbox row was written (≥ after its commit), subscriber process, p50/p95`,
      `${round(l.eventDelayAfterTxMs.p50, 1)}/${round(l.eventDelayAfterTxMs.p95, 1)} ms (${l.eventDelayAfterTxMs.n} events)`,
      'p95 ≤ 20 ms',
      (targets[`eventDelayAt${n}`] = l.eventDelayAfterTxMs.p95 <= 20),
    );
    add(
      'real path',
      `${n} concurrent: the same at the load generator's own subscriber, p50/p95`,
      `${round(l.eventDelayAfterTxInGeneratorMs.p50, 1)}/${round(l.eventDelayAfterTxInGeneratorMs.p95, 1)} ms`,
    );
    add(
      'real path',
      `${n} concurrent: commit → PubAck p95 (runtime histogram), events sent right after commit`,
      `≤ ${l.commitToAck.p95UnderMs} ms, ${l.commitToAck.events} events`,
    );
    const c = l.calls;
    add(
      'real path',
      `${n} concurrent: calls received (articles/predictions/publishes), order problems`,
      `${c.articles}/${c.predictions}/${c.publishes} for ${l.blogs} blogs, ${l.orderProblems}`,
      'one each, 0',
      c.articles === l.blogs && c.predictions === l.blogs && c.publishes === l.blogs && l.orderProblems === 0,
    );
  }
}
if (results.realpathLegacy) {
  const l = results.realpathLegacy;
  const ms = (s: { p50: number; p95: number; max: number }) => `${round(s.p50)}/${round(s.p95)}/${round(s.max)} ms`;
  const v = l.inkwellVsIdeal;
  add('real path, old workload', `ideal p50/p95/max (${l.blogs} blogs)`, ms(l.idealMs));
  add(
    'real path, old workload',
    'inkwell p50/p95/max',
    `${ms(l.inkwellMs)} (${x(v.p50)}/${x(v.p95)}/${x(v.max)} ideal)`,
    'p95 ≤ 1.1x ideal',
    (targets.realPathOldP95 = v.p95 <= 1.1),
  );
  add('real path, old workload', 'lifecycle worker p50/p95/max', ms(l.lifecycleMs));
  add(
    'real path, old workload',
    'lifecycle p95 ÷ inkwell p95',
    x(l.lifecycleP95OverInkwell),
    '≥ 2x',
    (targets.realPathOldVsLifecycle = l.lifecycleP95OverInkwell >= 2),
  );
}
if (results.latency) {
  const l = results.latency;
  add(
    'latency',
    'ideal per blog p50/p95/max',
    `${round(l.idealMs.p50)}/${round(l.idealMs.p95)}/${round(l.idealMs.max)} ms`,
  );
  add(
    'latency',
    'ideal makespan (rate-limit bound)',
    `${round(l.idealMakespanMs)} ms (${round(l.rateLimitBoundMs)} ms)`,
  );
  for (const s of l.systems) {
    const v = s.vsIdeal;
    add(
      'latency',
      `${s.system} p50/p95/max`,
      `${round(s.latencyMs.p50)}/${round(s.latencyMs.p95)}/${round(s.latencyMs.max)} ms (${x(v.p50)}/${x(v.p95)}/${x(v.max)} ideal)`,
      s.system === 'inkwell' ? 'p95 ≤ 1.05x ideal' : '',
      s.system === 'inkwell' ? (targets.latencyP95 = v.p95 <= 1.05) : undefined,
    );
    add('latency', `${s.system} makespan`, `${round(s.makespanMs)} ms (${x(v.makespan)} ideal)`);
  }
  const adv = l.inkwellP95AdvantageOverLifecycle;
  add('latency', 'lifecycle p95 ÷ inkwell p95', x(adv), '≥ 2x', (targets.latencyVsLifecycle = adv >= 2));
}
if (results.throughput) {
  const t = results.throughput;
  add('throughput', 'single-row UPDATE/s (16 conns)', `${round(t.updateRatePerSec)}`);
  add('throughput', 'single-row UPDATE/s (1 conn, context)', `${round(t.updateRateOneConnPerSec)}`);
  add(
    'throughput',
    `${t.blogs} blogs, 1 process: transitions/s`,
    `${round(t.singleTransitionsPerSec)} (${x(t.singleVsUpdateRate)} UPDATE/s; ${round(t.cpuUsPerBlog)} µs CPU/blog)`,
  );
  add('throughput', `${t.blogs} blogs, ${t.processes} processes: transitions/s`, `${round(t.transitionsPerSec)}`);
  add(
    'throughput',
    `transitions/s ÷ UPDATE/s (${t.processes} processes)`,
    x(t.vsUpdateRate),
    '≥ 1.5x',
    (targets.vsUpdate = t.vsUpdateRate >= 1.5),
  );
  add(
    'throughput',
    `finished blogs/s (${t.processes} processes; 1 process)`,
    `${round(t.blogsPerSec)}; ${round(t.singleBlogsPerSec)}`,
    '≥ 500',
    (targets.blogsPerSec = t.blogsPerSec >= 500),
  );
}
if (results.idle) {
  const i = results.idle;
  add(
    'idle',
    `${i.blogs} waiting: spawn → listening`,
    `${i.readyMs} ms`,
    '≤ 3000 ms',
    (targets.ready = i.readyMs <= 3000),
  );
  add('idle', 'RSS at ready', `${i.rssAtReadyMb} MB`, '< 300 MB', (targets.rss = i.rssAtReadyMb < 300));
  add('idle', 'RSS after load / peak', `${i.rssAfterLoadMb} / ${i.peakRssMb} MB`);
  const s = i.selections;
  add(
    'idle',
    `selections ${s.rate}/s × ${s.seconds} s, ${i.runs.length} runs`,
    `${s.accepted}/${s.sent} accepted, ${s.failed} failed, ${s.committed} committed`,
  );
  add(
    'idle',
    'select → committed p50/p99',
    `${round(i.latencyMs.p50, 1)}/${round(i.latencyMs.p99, 1)} ms`,
    'p99 < 50 ms',
    (targets.selectP99 = i.latencyMs.p99 < 50 && s.accepted === s.sent),
  );
  add('idle', 'p99 of the first second / of the rest', `${i.perSecond[0]?.p99 ?? '-'} / ${round(i.warmP99Ms, 1)} ms`);
}
if (results.embedded) {
  const m = results.embedded.median;
  add('embedded', `demo ${results.embedded.blogs} blogs: wall`, `${m.wallMs} ms`);
  add(
    'embedded',
    'load code + open PGlite / migrate + blogs / stop',
    `${m.loadAndOpenMs} / ${m.demoWallMs} / ${m.stopMs} ms`,
  );
  add('embedded', 'latency per blog p50/p95', `${m.p50Ms}/${m.p95Ms} ms`);
}
if (results.tokens) {
  const t = results.tokens;
  for (const c of t.cases) {
    const scenario = `tokens, npm start (${t.store}), ${c.answerMs / 1000} s answers`;
    add(
      scenario,
      `${t.tpm} tokens per ${t.windowMs / 1000} s, ${t.inFlight} blogs over ${t.stores} stores, load ${c.load.join(' → ')}`,
      `${c.calls} calls, ${c.blogsDone} blogs DONE, ${c.blogsFailed} FAILED`,
    );
    const isHeadline = c === t.cases[0];
    add(
      scenario,
      'tokens the provider counted per window ÷ budget (utilisation)',
      `${c.utilisation} (${c.usedPerWindow.join(', ')})`,
      '≥ 0.9',
      isHeadline ? (targets.tokensUtilisation = c.utilisation >= 0.9) : c.utilisation >= 0.9,
    );
    add(
      scenario,
      '429s for tokens',
      `${c.rejected429}`,
      '0',
      isHeadline ? (targets.tokens429 = c.rejected429 === 0) : c.rejected429 === 0,
    );
    add(
      scenario,
      'most counted in any window ÷ budget',
      `${c.windowMaxOverBudget}`,
      '≤ 1.1',
      isHeadline ? (targets.tokensWindowMax = c.windowMaxOverBudget <= 1.1) : c.windowMaxOverBudget <= 1.1,
    );
    add(
      scenario,
      'blogs DONE whose event usage ≠ what the provider reported',
      `${c.spendMismatches} of ${c.blogsDone} (${c.spendFromEvents} / ${c.spendAtProvider} tokens)`,
      '0',
      isHeadline ? (targets.tokensSpend = c.spendMismatches === 0) : c.spendMismatches === 0,
    );
    add(scenario, 'answers cut off at max_completion_tokens', `${c.truncated} (${round(100 * c.truncationRate, 2)} %)`);
    add(
      scenario,
      'answer time ÷ window (s); up-front count ÷ cost (k); cap 1 ÷ (1 − s + s·k)',
      `${c.answerShareOfWindow}; ${x(c.upFrontOverCost)}; ${c.theoreticalCap}`,
    );
  }
}

if (results.retention) {
  const r = results.retention;
  const mb = (s: { blogs: number; outbox: number; providerRefs: number; database: number }) =>
    `${s.blogs}/${s.outbox}/${s.providerRefs}/${s.database} MB`;
  const lists = (l: RetentionResult['lists']['duringPrune']) =>
    `${round(l.latencyMs.p50, 1)}/${round(l.latencyMs.p99, 1)} ms (p99 ${Object.entries(l.p99ByQuery)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})${l.failed ? `, ${l.failed} failed` : ''}`;
  const p = r.prune;
  const i = r.lists.interleaved;
  const f = r.lists.afterVacuumFull;
  add('retention', `${r.blogs} ended blogs: blogs/outbox/refs/database, kept copy`, mb(r.sizes.kept));
  add(
    'retention',
    'pruned copy after VACUUM; after VACUUM FULL',
    `${mb(r.sizes.afterPrune)}; ${mb(r.sizes.afterVacuumFull)}`,
  );
  add('retention', `GET /api/blogs p50/p99 during pruning (${r.rate}/s)`, lists(r.lists.duringPrune));
  const rounds = `${i.rounds.length / 2} × ${r.roundSeconds} s each, interleaved`;
  add('retention', `GET /api/blogs p50/p99 kept copy (${rounds})`, lists(i.kept));
  add('retention', 'GET /api/blogs p50/p99 pruned copy + VACUUM', lists(i.pruned));
  add('retention', 'GET /api/blogs p50/p99 kept; pruned + VACUUM FULL', `${lists(f.kept)}; ${lists(f.pruned)}`);
  add(
    'retention',
    `pruning: time, batches of ${p.batchSize}, batch p50/p99/max, busy share`,
    `${p.seconds} s, ${p.batches}, ${round(p.batchMs.p50)}/${round(p.batchMs.p99)}/${round(p.batchMs.max)} ms, ${p.busyShare}`,
    '≤ 0.55',
    (targets.retentionBusyShare = p.busyShare <= 0.55),
  );
  add(
    'retention',
    'pruned blogs/events/refs; VACUUM, VACUUM FULL',
    `${p.pruned.blogs}/${p.pruned.events}/${p.pruned.refs}; ${p.vacuumSeconds} s, ${p.vacuumFullSeconds} s`,
    `all ${r.blogs}`,
    (targets.retentionPrunedAll = p.pruned.blogs === r.blogs),
  );
}

console.log(
  `\nInkwell bench${quick ? ' (quick)' : ''}: ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}, PostgreSQL ${machine.postgres}, ${machine.date}`,
);
console.table(rows);

const panels: Panel[] = [];
if (results.realpath) {
  panels.push({
    title: 'Real path: npm start, HTTP fakes, JetStream; p95 per blog by concurrency (ms; lower is better)',
    bars: results.realpath.levels.flatMap((l) => [
      { label: `floor, ${l.concurrency} concurrent`, value: l.floorMs.p95, unit: 'ms', series: 3 },
      { label: `inkwell, ${l.concurrency} concurrent`, value: l.inkwellMs.p95, unit: 'ms', series: 0 },
    ]),
  });
}
if (results.realpathLegacy) {
  const l = results.realpathLegacy;
  panels.push({
    title: `Real path, the old workload (${l.blogs} blogs): p95 per blog (ms; lower is better)`,
    bars: [
      { label: 'ideal p95', value: l.idealMs.p95, unit: 'ms', series: 3 },
      { label: 'inkwell p95', value: l.inkwellMs.p95, unit: 'ms', series: 0 },
      { label: 'lifecycle worker p95', value: l.lifecycleMs.p95, unit: 'ms', series: 1 },
    ],
  });
}
if (results.latency) {
  const l = results.latency;
  panels.push({
    title: `Latency per blog, ${l.blogs} blogs, stage times ÷ 100 (ms; lower is better)`,
    bars: [
      { label: 'ideal p50', value: l.idealMs.p50, unit: 'ms', series: 3 },
      { label: 'ideal p95', value: l.idealMs.p95, unit: 'ms', series: 3 },
      ...l.systems.flatMap((s, i) => [
        { label: `${s.system} p50`, value: s.latencyMs.p50, unit: 'ms', series: i },
        { label: `${s.system} p95`, value: s.latencyMs.p95, unit: 'ms', series: i },
      ]),
    ],
  });
}
if (results.throughput) {
  const t = results.throughput;
  panels.push({
    title: `Writes per second on the same PostgreSQL (higher is better)`,
    bars: [
      { label: 'single-row UPDATE (16 conns)', value: t.updateRatePerSec, unit: '/s', series: 3 },
      { label: `inkwell transitions, ${t.processes} processes`, value: t.transitionsPerSec, unit: '/s', series: 0 },
      { label: 'inkwell transitions, 1 process', value: t.singleTransitionsPerSec, unit: '/s', series: 1 },
      { label: `inkwell finished blogs, ${t.processes} processes`, value: t.blogsPerSec, unit: '/s', series: 0 },
    ],
  });
}
if (results.retention) {
  const r = results.retention;
  const { interleaved: i, afterVacuumFull: f } = r.lists;
  panels.push({
    title: `Retention, ${r.blogs} ended blogs: GET /api/blogs p99, kept vs pruned copy, interleaved (ms; lower is better)`,
    bars: [
      { label: 'kept copy', value: i.kept.latencyMs.p99, unit: 'ms', series: 1 },
      { label: 'pruned copy + VACUUM', value: i.pruned.latencyMs.p99, unit: 'ms', series: 0 },
      { label: 'during pruning', value: r.lists.duringPrune.latencyMs.p99, unit: 'ms', series: 1 },
      { label: 'kept copy (2nd)', value: f.kept.latencyMs.p99, unit: 'ms', series: 1 },
      { label: 'pruned copy + VACUUM FULL', value: f.pruned.latencyMs.p99, unit: 'ms', series: 0 },
    ],
  });
}
const suffix = `${only ? `.${only}` : ''}${quick ? '.quick' : ''}`;
const dir = new URL('./results/', import.meta.url);
await mkdir(dir, { recursive: true });
const json = {
  quick,
  only: only ?? null,
  machine,
  seconds: Math.round((Date.now() - started) / 1000),
  targets,
  results,
  table: rows,
};
await writeFile(new URL(`bench${suffix}.json`, dir), `${JSON.stringify(json, null, 2)}\n`);
const subtitle = `${machine.cores} cores · Node ${machine.node} · PostgreSQL ${machine.postgres} · ${machine.date.slice(0, 10)}`;
await writeFile(new URL(`bench${suffix}.svg`, dir), renderChart('Inkwell benchmarks', subtitle, panels));
console.log(`written ${new URL(`bench${suffix}.json`, dir).pathname} and bench${suffix}.svg`);
process.exit(0);
