/**
 * Scenario 4, the embedded default: `node --import tsx src/demo/demo.ts --blogs 100 --stores 5` (what
 * `npm run demo` runs) on PGlite in a fresh data dir, offline providers with the old stage times ÷ 100, no
 * DATABASE_URL or NATS_URL. Wall time from spawn to exit, split by the demo's own output and log timestamps.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, exited, spawnTsx } from './lib/spawn';
import { median } from './lib/stats';

interface Run {
  wallMs: number;
  /** Spawn → the demo's first line: Node + tsx loading the code, PGlite creating its data dir. */
  loadAndOpenMs: number;
  /** → the runtime's 'rehydrated working blogs' log: migrations and store leases. */
  migrateMs: number;
  /** → the demo's summary: every blog created and finished. */
  blogsMs: number;
  /** → exit: summary, stop (drain, close PGlite) and process exit. */
  stopMs: number;
  /** The demo's own 'wall time (including start-up)': migrations + blogs. */
  demoWallMs: number;
  p50Ms: number;
  p95Ms: number;
  done: number;
}

async function runOnce(blogs: number): Promise<Run> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'inkwell-demo-'));
  const lines: string[] = [];
  let firstLineAt = 0;
  const started = Date.now();
  const child = spawnTsx(
    ['src/demo/demo.ts', '--blogs', String(blogs), '--stores', '5'],
    cleanEnv({ INKWELL_DATA_DIR: dataDir }),
    (line) => {
      firstLineAt ||= Date.now();
      lines.push(line);
    },
  );
  const code = await exited(child);
  const endedAt = Date.now();
  try {
    if (code !== 0) throw new Error(`demo exited with ${code}: ${lines.slice(-5).join(' | ')}`);
    const out = lines.join('\n');
    const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
    // The demo's log is written asynchronously and may miss its last lines: only its start-up line is used.
    const log = (await readFile(path.join(dataDir, 'demo.log'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { time: number; msg: string });
    const rehydrated = log.find((l) => l.msg === 'rehydrated working blogs')?.time ?? NaN;
    const demoWallMs = num(/wall time (\d+) ms/);
    return {
      wallMs: endedAt - started,
      loadAndOpenMs: firstLineAt - started,
      migrateMs: rehydrated - firstLineAt,
      blogsMs: demoWallMs - (rehydrated - firstLineAt),
      stopMs: endedAt - started - (firstLineAt - started) - demoWallMs,
      demoWallMs,
      p50Ms: num(/p50 (\d+) ms/),
      p95Ms: num(/p95 (\d+) ms/),
      done: num(/Summary\s+done (\d+)/),
    };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

export interface EmbeddedResult {
  blogs: number;
  runs: Run[];
  median: Omit<Run, 'done'>;
}

export async function runEmbedded(quick: boolean, say: (line: string) => void): Promise<EmbeddedResult> {
  const blogs = 100;
  const runs: Run[] = [];
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    const run = await runOnce(blogs);
    say(`  embedded rep ${r + 1}: wall ${run.wallMs} ms, ${run.done}/${blogs} done`);
    runs.push(run);
  }
  const m = (k: keyof Run) => median(runs.map((r) => r[k]));
  return {
    blogs,
    runs,
    median: {
      wallMs: m('wallMs'),
      loadAndOpenMs: m('loadAndOpenMs'),
      migrateMs: m('migrateMs'),
      blogsMs: m('blogsMs'),
      stopMs: m('stopMs'),
      demoWallMs: m('demoWallMs'),
      p50Ms: m('p50Ms'),
      p95Ms: m('p95Ms'),
    },
  };
}
