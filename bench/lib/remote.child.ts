/**
 * `npm start` as the idle scenario runs it: the production composition (config from the environment, PostgreSQL,
 * HTTP, supervisor, leases) with providers that behave like the remote services, not like the offline ones. In
 * production the text, image and publish calls are network waits on other machines, under the providers' real
 * per-minute limits; the offline providers instead render Markdown, sanitize HTML and write files on this CPU,
 * which would make the scenario measure the offline publisher rather than the runtime. So each call here waits the
 * old system's stage time (ideas 5 s, article 30 s, image 10 s, publish 7 s, ±50 %) behind the real limiter with
 * the real limits and a real 60 s window (bench/lib/sim.ts: LIMITS), then answers with fixed content.
 */
import { composeRuntime } from '../../src/app/compose';
import { createProviderLimiter } from '../../src/providers/limiter';
import { createSimulatedProviders, LIMITS, SCALE, type LimiterName } from './sim';

const quiet = { info() {}, warn() {}, error() {} };
const limiters = Object.fromEntries(
  (Object.keys(LIMITS) as LimiterName[]).map((name) => [
    name,
    createProviderLimiter({ name, ...LIMITS[name], windowMs: 60_000, log: quiet }),
  ]),
) as Record<LimiterName, ReturnType<typeof createProviderLimiter>>;
const { runtime } = await composeRuntime({ providers: () => createSimulatedProviders('idle', limiters, SCALE) });
process.on(
  'SIGTERM',
  () =>
    void runtime.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    ),
);
await runtime.start();
