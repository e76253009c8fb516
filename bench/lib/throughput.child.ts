/**
 * One runtime of the throughput scenario, in its own process (one per core in the per-core run): the production
 * runtime on PostgreSQL with instant providers. It creates its share of the blogs (its own stores) through the
 * intake, 64 at a time, once the parent sends SIGUSR2, and prints one JSON line when all of them are DONE.
 *
 * Environment: DATABASE_URL, BENCH_BLOGS (this process's blogs), BENCH_STORES (its stores), BENCH_PART (a name
 * that keeps its blog and store ids apart from the other processes'), BENCH_DEFAULT_CAP=1 (keep the default
 * INKWELL_MAX_ACTIVE_PER_STORE instead of letting every blog of the process work at once).
 */
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../../src/config';
import { composeRuntime } from '../../src/app/compose';
import { createInstantProviders } from './sim';

const CREATE_CONCURRENCY = 64;
const blogs = Number(process.env.BENCH_BLOGS);
const stores = Number(process.env.BENCH_STORES);
const part = process.env.BENCH_PART ?? 'p0';
const config = loadConfig({
  DATABASE_URL: process.env.DATABASE_URL!,
  INKWELL_LOG_LEVEL: 'error',
  INKWELL_DATA_DIR: '/tmp/inkwell-bench-unused',
  INKWELL_NODE_ID: `bench-throughput-${part}`,
  ...(process.env.BENCH_DEFAULT_CAP === '1' ? {} : { INKWELL_MAX_ACTIVE_PER_STORE: String(blogs) }),
});
let done = 0;
let allDone: () => void = () => undefined;
const finished = new Promise<void>((resolve) => (allDone = resolve));
const { runtime } = await composeRuntime({
  config,
  providers: () => createInstantProviders(),
  onStatusChange: (c) => {
    if (c.status === 'DONE' && ++done === blogs) allDone();
  },
});
await runtime.start(false);
process.once('SIGTERM', () => void runtime.stop().then(() => process.exit(0)));
const go = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve()));
console.log(JSON.stringify({ ready: true }));
await go;

const cpu = process.cpuUsage();
const started = performance.now();
const idea = { title: 'Throughput', summary: 'How many blogs per second?' };
let next = 0;
await Promise.all(
  Array.from({ length: CREATE_CONCURRENCY }, async () => {
    while (next < blogs) {
      const i = next++;
      const reply = await runtime.intake.apply('create', {
        blogId: `t-${part}-${i}`,
        instanceId: `store-${part}-${i % stores}`,
        idea,
      });
      if (!reply.applied) throw new Error(`blog t-${part}-${i} existed already`);
    }
  }),
);
const createSeconds = (performance.now() - started) / 1000;
await finished;
await runtime.supervisor.flush();
const used = process.cpuUsage(cpu);
console.log(
  JSON.stringify({
    done,
    createSeconds,
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
  }),
);
