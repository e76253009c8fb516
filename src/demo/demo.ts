/**
 * `npm run demo`: the main job on the embedded default (or on PostgreSQL when DATABASE_URL is set).
 * Creates blogs for several stores through the same intake as NATS and HTTP, selects ideas once they arrive,
 * shows live progress and ends with a summary and where the published pages are.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ENDED_STATUSES } from '../../machines/blog.types';
import { pino } from 'pino';
import { composeRuntime } from '../app/compose';
import { loadConfig } from '../config';
import { ConfigError } from '../errors';
import { legacyLatency, withLatency } from '../providers/latency';
import { createProgress, quantile, renderFrame, type Tracked } from './progress';
import { TOPICS, IDEAS } from './samples';

const HELP = `usage: npm run demo -- [--blogs N] [--stores N] [--scale N] [--timeout S] [--serve]
  --blogs    blogs to create (default 30), half from topics, half from ready ideas
  --stores   stores they belong to (default 5)
  --scale    provider latency = the old system's stage times divided by this (default 100; 0 = instant)
  --timeout  give up after this many seconds (default 180)
  --serve    keep serving HTTP on PORT after the run (Ctrl-C to stop)`;

function parseFlags() {
  const { values } = parseArgs({
    options: {
      blogs: { type: 'string', default: '30' },
      stores: { type: 'string', default: '5' },
      scale: { type: 'string', default: '100' },
      timeout: { type: 'string', default: '180' },
      serve: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const num = (name: keyof typeof values, min: number) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) throw new ConfigError(`--${name} must be a number >= ${min}`);
    return n;
  };
  return {
    blogs: num('blogs', 1),
    stores: num('stores', 1),
    scale: num('scale', 0),
    timeoutS: num('timeout', 1),
    serve: values.serve,
  };
}

const FINAL = ENDED_STATUSES;

async function run(): Promise<number> {
  const flags = parseFlags();
  const config = loadConfig();
  // Logs go to a file: the terminal shows the progress.
  const logFile = path.join(config.dataDir, 'demo.log');
  mkdirSync(config.dataDir, { recursive: true });
  const tracked = new Map<string, Tracked>();
  const pendingSelections = new Set<Promise<unknown>>();
  const { log, providers, runtime } = await composeRuntime({
    config,
    logTo: { name: 'demo', destination: pino.destination({ dest: logFile, sync: false }) },
    bus: 'memory',
    providers: (configured) => (flags.scale > 0 ? withLatency(configured(), legacyLatency(flags.scale)) : configured()),
    onStatusChange: (change) => {
      const blog = tracked.get(change.blogId);
      if (!blog) return;
      blog.status = change.status;
      if (FINAL.includes(change.status)) blog.finishedAt = Date.now();
      if (change.status === 'AWAITING_SELECTION') {
        // A store owner takes a moment to choose.
        const ideas = change.context.ideas ?? [];
        const p = new Promise((r) => setTimeout(r, 50 + Math.random() * 200))
          .then(() =>
            runtime.intake.apply('select', {
              blogId: change.blogId,
              instanceId: change.instanceId,
              ideaIndex: Math.floor(Math.random() * ideas.length),
            }),
          )
          .catch((err: unknown) => log.error({ err, blogId: change.blogId }, 'demo selection failed'))
          .finally(() => pendingSelections.delete(p));
        pendingSelections.add(p);
      }
    },
  });
  const { writer, images, publisher } = providers;

  console.log(`Inkwell demo: ${flags.blogs} blogs for ${flags.stores} stores`);
  console.log(
    `  database: ${config.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}/db`}`,
  );
  console.log(`  providers: ${writer.name} writer, ${images.name} images, ${publisher.name} publisher`);
  console.log(`  logs: ${logFile}\n`);

  const started = Date.now();
  const { port } = await runtime.start(flags.serve);
  const progress = createProgress(process.stdout);

  for (let i = 0; i < flags.blogs; i++) {
    const instanceId = `store-${(i % flags.stores) + 1}`;
    const topic = TOPICS[i % TOPICS.length]!;
    const idea = IDEAS[i % IDEAS.length]!;
    const blogId = randomUUID();
    const body =
      i % 2 === 0
        ? { blogId, instanceId, topic, keywords: ['demo'] }
        : { blogId, instanceId, idea, keywords: ['demo'] };
    // Tracked before it exists: its first status changes can happen before `apply` returns.
    tracked.set(blogId, { instanceId, status: 'PENDING', createdAt: Date.now() });
    await runtime.intake.apply('create', body);
  }

  const deadline = started + flags.timeoutS * 1000;
  const allFinal = () => [...tracked.values()].every((b) => FINAL.includes(b.status));
  while (!allFinal() && Date.now() < deadline) {
    progress.draw(renderFrame(tracked, Date.now() - started));
    await new Promise((r) => setTimeout(r, 100));
  }
  progress.draw(renderFrame(tracked, Date.now() - started), true);
  await Promise.allSettled([...pendingSelections]);
  const wallMs = Date.now() - started;

  const blogs = [...tracked.values()];
  const done = blogs.filter((b) => b.status === 'DONE');
  const latencies = done.map((b) => (b.finishedAt ?? 0) - b.createdAt);
  const stuck = blogs.length - blogs.filter((b) => FINAL.includes(b.status)).length;
  console.log('\nSummary');
  console.log(
    `  done ${done.length} · failed ${blogs.filter((b) => b.status === 'FAILED').length} · unfinished ${stuck}`,
  );
  console.log(`  latency per blog: p50 ${quantile(latencies, 0.5)} ms · p95 ${quantile(latencies, 0.95)} ms`);
  console.log(`  wall time ${wallMs} ms (including start-up)`);
  console.log(
    config.WIX_APP_ID
      ? '  posts were published to each store’s Wix Blog'
      : `  posts: ${path.join(config.dataDir, 'published')}/<store>/index.html`,
  );
  if (flags.serve) {
    console.log(`  serving http://127.0.0.1:${port}/ — Ctrl-C to stop`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  await runtime.stop();
  return stuck === 0 && done.length === blogs.length ? 0 : 1;
}

run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
