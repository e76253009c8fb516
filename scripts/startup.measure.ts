/**
 * Start-up time and memory of the runtime, from the TypeScript sources through tsx and from the compiled build:
 * `npm run measure:startup` (needs `npm run build` and DATABASE_URL; runs on the in-process bus). Time is from spawn
 * to the 'listening' log line; memory is the process's resident set (VmRSS) then and 5 s later.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const VARIANTS: Record<string, string[]> = {
  'tsx (node --import tsx src/main.ts)': ['--import', 'tsx', 'src/main.ts'],
  'compiled (node dist/src/main.js)': ['dist/src/main.js'],
};
const RUNS = Number(process.env.RUNS ?? 5);

const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function once(args: string[]): Promise<{ ms: number; rss: number; rssLater: number }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'inkwell-startup-'));
  const env: Record<string, string | undefined> = { ...process.env, PORT: '0', INKWELL_DATA_DIR: dataDir };
  for (const name of ['NATS_URL', 'REDIS_URL', 'NODE_OPTIONS']) delete env[name];
  const started = performance.now();
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const ms = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line.includes('"msg":"listening"')) resolve(performance.now() - started);
    });
    void exited.then(() => reject(new Error(`${args.join(' ')} exited before listening`)));
  });
  const rss = rssMiB(proc.pid!);
  await new Promise((r) => setTimeout(r, 5000));
  const rssLater = rssMiB(proc.pid!);
  proc.kill('SIGTERM');
  await exited;
  rmSync(dataDir, { recursive: true, force: true });
  return { ms, rss, rssLater };
}

for (const [name, args] of Object.entries(VARIANTS)) {
  const runs: Awaited<ReturnType<typeof once>>[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once(args));
  const pick = (key: 'ms' | 'rss' | 'rssLater') => median(runs.map((r) => r[key])).toFixed(0);
  console.log(
    `${name}: start ${pick('ms')} ms, RSS ${pick('rss')} MiB at listening, ${pick('rssLater')} MiB 5 s later (median of ${RUNS})`,
  );
}
