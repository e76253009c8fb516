/**
 * Spend per blog in the statechart: what every attempt reports (successful or failed, retried or final) adds up in
 * the context, and a snapshot persisted before spend was kept restores and counts on from zero.
 */
import { createActor, fromPromise, waitFor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { blogMachine, type StageInput } from '../../machines/blog.machine';
import type { StageOutput, Usage } from '../../machines/blog.types';

const settings = { maxAttempts: 2, retryBaseMs: 0, selectionTimeoutMs: 60_000 };
const tokens = (inputTokens: number, outputTokens: number): Usage => ({ inputTokens, outputTokens, images: 0 });

/** A stage that plays `script` in turn: a usage to succeed with, or `['fail', usage, retryable]`. */
function stage<T>(result: T, script: Array<Usage | ['fail', Usage, boolean]>) {
  return fromPromise<StageOutput<T>, StageInput>(async () => {
    const step = script.shift() ?? tokens(0, 0);
    if (Array.isArray(step)) {
      const [, usage, retryable] = step;
      throw Object.assign(new Error('failed'), { code: 'X', message: 'failed', retryable, at: 0, usage });
    }
    return { result, at: 0, usage: step };
  });
}

function machineWith(script: {
  ideas?: Array<Usage | ['fail', Usage, boolean]>;
  article?: Array<Usage | ['fail', Usage, boolean]>;
  image?: Array<Usage | ['fail', Usage, boolean]>;
}) {
  return blogMachine.provide({
    actors: {
      admission: fromPromise<void, { blogId: string; instanceId: string }>(() => Promise.resolve()),
      // Backoffs (due at once here) end; the selection timeout (a minute on) never does.
      wait: fromPromise<void, { until: number }>(({ input: w }) =>
        w.until <= 0 ? Promise.resolve() : new Promise<void>(() => undefined),
      ),
      ideas: stage([{ title: 'a', summary: '' }], script.ideas ?? []),
      article: stage({ title: 't', excerpt: '', markdown: 'm', html: '<p>m</p>' }, script.article ?? []),
      image: stage({ url: 'u', alt: 'a' }, script.image ?? []),
      publish: stage({ id: 'p' }, []),
    },
  });
}

const input = { blogId: 'b', instanceId: 's', request: { topic: 't', keywords: [] }, settings };

describe('usage in the blog context', () => {
  it('adds up successful and failed attempts, retries included, up to DONE', async () => {
    const actor = createActor(
      machineWith({
        ideas: [['fail', tokens(100, 7), true], tokens(120, 300)],
        article: [tokens(400, 1200)],
        image: [{ inputTokens: 0, outputTokens: 0, images: 1 }],
      }),
      { input },
    ).start();
    await waitFor(actor, (s) => s.matches('AWAITING_SELECTION'));
    expect(actor.getSnapshot().context.usage).toEqual(tokens(220, 307));
    actor.send({ type: 'SELECT', ideaIndex: 0, at: 0 });
    await waitFor(actor, (s) => s.matches('DONE'));
    expect(actor.getSnapshot().context.usage).toEqual({ inputTokens: 620, outputTokens: 1507, images: 1 });
  });

  it('counts the attempt that makes the blog FAIL', async () => {
    const actor = createActor(machineWith({ ideas: [['fail', tokens(50, 5), false]] }), { input }).start();
    await waitFor(actor, (s) => s.matches('FAILED'));
    expect(actor.getSnapshot().context.usage).toEqual(tokens(50, 5));
    expect(actor.getSnapshot().context.lastError).toBeUndefined();
  });

  it('restores a snapshot persisted before usage was kept, and counts on', async () => {
    const first = createActor(machineWith({}), { input }).start();
    await waitFor(first, (s) => s.matches('AWAITING_SELECTION'));
    const persisted = first.getPersistedSnapshot() as unknown as { context: Record<string, unknown> };
    first.stop();
    delete persisted.context.usage;
    const restored = createActor(machineWith({ article: [tokens(10, 20)] }), {
      snapshot: persisted as never,
      input,
    }).start();
    expect(restored.getSnapshot().context.usage).toBeUndefined();
    restored.send({ type: 'SELECT', ideaIndex: 0, at: 0 });
    await waitFor(restored, (s) => s.matches('DONE'));
    expect(restored.getSnapshot().context.usage).toEqual(tokens(10, 20));
  });
});
