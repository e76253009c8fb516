/**
 * Start-up time and memory of the runtime: `npm start` before issue #21 (the sources through tsx, today's
 * `npm run dev`) and after (the compiled build: the prestart's freshness check, then plain node), and node alone on
 * each, without npm. `npm run measure:startup` (needs DATABASE_URL; builds dist/ first if stale; runs on the
 * in-process bus). Time is from spawn to the 'listening' log line; memory is the runtime node process's resident set
 * (VmRSS) then and 5 s later (npm's own process comes on top of the npm variants). The variants take turns.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ensureDist } from './dist.fresh.mjs';

const VARIANTS: Record<string, [string, string[]]> = {
  'before: npm start = npm run dev (tsx, src/main.ts)': ['npm', ['run', 'dev', '--silent']],
  'after: npm start (prestart check, node dist/src/main.js)': ['npm', ['start', '--silent']],
  'node --import tsx src/main.ts': [
    process.execPath,
    ['--require', './src/runtime/early.signals.cjs', '--import', 'tsx', 'src/main.ts'],
  ],
  'node dist/src/main.js': [
    process.execPath,
    ['--require', './dist/src/runtime/early.signals.cjs', '--enable-source-maps', 'dist/src/main.js'],
  ],
};
const RUNS = Number(process.env.RUNS ?? 5);

const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The runtime's node process: `pid` itself, or the child npm runs it in. */
function runtimePid(pid: number): number {
  if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('main.')) return pid;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').map(Number);
  return children.find((c) => readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('main.')) ?? NaN;
}

async function once([cmd, args]: [string, string[]]): Promise<{ ms: number; rss: number; rssLater: number }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'inkwell-startup-'));
  const env: Record<string, string | undefined> = { ...process.env, PORT: '0', INKWELL_DATA_DIR: dataDir };
  for (const name of ['NATS_URL', 'REDIS_URL', 'NODE_OPTIONS']) delete env[name];
  const started = performance.now();
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const ms = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line.includes('"msg":"listening"')) resolve(performance.now() - started);
    });
    void exited.then(() => reject(new Error(`${cmd} ${args.join(' ')} exited before listening`)));
  });
  const node = runtimePid(proc.pid!);
  const rss = rssMiB(node);
  await new Promise((r) => setTimeout(r, 5000));
  const rssLater = rssMiB(node);
  process.kill(-proc.pid!, 'SIGTERM');
  await exited;
  rmSync(dataDir, { recursive: true, force: true });
  return { ms, rss, rssLater };
}

ensureDist();
// Round robin, after one unmeasured round: the variants share the machine's load and none pays for the first start
// (tsx's transform cache, the page cache, the database's first connections).
const runs = new Map<string, Awaited<ReturnType<typeof once>>[]>(Object.keys(VARIANTS).map((name) => [name, []]));
for (let round = 0; round <= RUNS; round++) {
  for (const [name, command] of Object.entries(VARIANTS)) {
    const run = await once(command);
    if (round > 0) runs.get(name)!.push(run);
  }
}
for (const [name, results] of runs) {
  const pick = (key: 'ms' | 'rss' | 'rssLater') => median(results.map((r) => r[key])).toFixed(0);
  console.log(
    `${name}: start ${pick('ms')} ms, RSS ${pick('rss')} MiB at listening, ${pick('rssLater')} MiB 5 s later (median of ${RUNS}, after a warm-up round)`,
  );
}
