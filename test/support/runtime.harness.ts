/**
 * A real runtime process for crash tests: the production composition (config from env, real database, offline
 * providers, HTTP) with scripted provider behaviour chosen per blog through its keywords, so a test can park
 * blogs in chosen stages and kill the process there:
 * - `hold:<stage>` (ideas|article|image|publish): the call hangs while HARNESS_HOLD=1; `publish` hangs AFTER
 *   the page is written, i.e. the response is lost.
 * - `fail-once:<stage>`: the first call of that stage (across processes) fails with a retryable error.
 * - `slow:<stage>`: the call takes HARNESS_SLOW_MS (default 2000) first, in this process.
 * HARNESS_BLOCK_EVENTS=1 keeps status events in the outbox (never published), as if the process died first.
 * Run with `node --import tsx test/support/runtime.harness.ts`; prints `{"harness":"ready","port":N}`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { composeRuntime } from '../../src/app/compose';
import type { Bus } from '../../src/bus/bus.port';
import { loadConfig } from '../../src/config';
import { StageFailureError } from '../../src/errors';
import { legacyLatency, withLatency } from '../../src/providers/latency';
import { sleep } from '../../src/providers/offline/seed';
import type { Providers } from '../../src/providers/providers';

const holding = process.env.HARNESS_HOLD === '1';

/** True the first time for this blog and stage across every harness process sharing the data dir. */
function firstTime(blogId: string, stage: string): boolean {
  const dir = path.join(config.dataDir, 'harness');
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(path.join(dir, `${blogId}.${stage}`), '', { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

const slowMs = Number(process.env.HARNESS_SLOW_MS ?? 2000);

async function script(keywords: string[], stage: string, blogId: string, signal: AbortSignal): Promise<void> {
  if (keywords.includes(`slow:${stage}`)) await sleep(slowMs, signal);
  if (keywords.includes(`fail-once:${stage}`) && firstTime(blogId, stage)) {
    return Promise.reject(new StageFailureError('SCRIPTED', `scripted ${stage} failure`, true));
  }
  if (holding && keywords.includes(`hold:${stage}`)) {
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
  }
  return Promise.resolve();
}

function scripted(p: Providers): Providers {
  return {
    ...p,
    writer: {
      name: 'scripted',
      generateIdeas: async (c) => (
        await script(c.request.keywords, 'ideas', c.blogId, c.signal),
        p.writer.generateIdeas(c)
      ),
      generateArticle: async (c) => (
        await script(c.request.keywords, 'article', c.blogId, c.signal),
        p.writer.generateArticle(c)
      ),
    },
    images: {
      name: 'scripted',
      createHeaderImage: async (c) => (
        await script(c.request.keywords, 'image', c.blogId, c.signal),
        p.images.createHeaderImage(c)
      ),
    },
    publisher: {
      name: 'scripted',
      publish: async (c) => {
        const post = await p.publisher.publish(c);
        await script(c.request.keywords, 'publish', c.blogId, c.signal);
        return post;
      },
    },
  };
}

const config = loadConfig();
// HARNESS_BLOCK_EVENTS=1: status events are committed but never reach the bus, as if the process died first.
const blockEvents = (bus: Bus): Bus => ({
  ...bus,
  publish: (subject, payload, opts) =>
    opts?.durable ? new Promise<void>(() => undefined) : bus.publish(subject, payload, opts),
});
const scale = Number(process.env.HARNESS_LATENCY_SCALE ?? 0);
const { runtime } = await composeRuntime({
  config,
  ...(process.env.HARNESS_BLOCK_EVENTS === '1' ? { wrapBus: blockEvents } : {}),
  // HARNESS_LATENCY_SCALE=N: every provider call takes the old system's stage time divided by N.
  providers: (configured) => scripted(scale > 0 ? withLatency(configured(), legacyLatency(scale)) : configured()),
  drainGraceMs: 1000,
});
const stop = () => void runtime.stop().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const { port } = await runtime.start();
process.stdout.write(`${JSON.stringify({ harness: 'ready', port })}\n`);
