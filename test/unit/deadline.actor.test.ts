/**
 * The `wait` actor (src/actors/deadline.actor.ts): done at its deadline, silent once stopped, and persisted and
 * restored exactly like the `fromPromise` timer it replaces, inside a machine as the blog machine invokes it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor, createMachine, fromPromise, type AnyActorLogic } from 'xstate';
import { fromDeadline } from '../../src/actors/deadline.actor';

/** A machine that waits for `until`, as AWAITING_SELECTION and `backoff` do, then says which way it left. */
function timed(wait: AnyActorLogic) {
  return createMachine({
    types: {} as { context: { until: number }; input: { until: number }; events: { type: 'SKIP' } },
    context: ({ input }) => ({ until: input.until }),
    initial: 'waiting',
    states: {
      waiting: {
        invoke: { id: 'timer', src: 'wait', input: ({ context }) => ({ until: context.until }), onDone: 'elapsed' },
        on: { SKIP: 'skipped' },
      },
      elapsed: { type: 'final' },
      skipped: { type: 'final' },
    },
  }).provide({ actors: { wait } });
}

describe('fromDeadline', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is done when the clock reaches the deadline, not before', async () => {
    const actor = createActor(timed(fromDeadline(Date.now)), { input: { until: Date.now() + 5_000 } }).start();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(actor.getSnapshot().value).toBe('waiting');
    await vi.advanceTimersByTimeAsync(1);
    expect(actor.getSnapshot().value).toBe('elapsed');
  });

  it('waits beyond the 24.8-day limit of setTimeout (a week-long selection timeout)', async () => {
    const week = 7 * 24 * 3600 * 1000;
    const actor = createActor(timed(fromDeadline(Date.now)), { input: { until: Date.now() + week } }).start();
    await vi.advanceTimersByTimeAsync(week - 1);
    expect(actor.getSnapshot().value).toBe('waiting');
    await vi.advanceTimersByTimeAsync(1);
    expect(actor.getSnapshot().value).toBe('elapsed');
  });

  it('resolves a deadline already past in a microtask, not inside the transition that started it', async () => {
    const actor = createActor(timed(fromDeadline(Date.now)), { input: { until: Date.now() - 1 } }).start();
    expect(actor.getSnapshot().value).toBe('waiting');
    await Promise.resolve();
    expect(actor.getSnapshot().value).toBe('elapsed');
  });

  it('clears its timer when its state is left first, and never fires afterwards', async () => {
    const actor = createActor(timed(fromDeadline(Date.now)), { input: { until: Date.now() + 5_000 } }).start();
    expect(vi.getTimerCount()).toBe(1);
    actor.send({ type: 'SKIP' });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(actor.getSnapshot().value).toBe('skipped');
  });

  it('persists like the fromPromise timer it replaces, and restores either snapshot to a running timer', async () => {
    const until = Date.now() + 5_000;
    const promiseTimer = fromPromise<void, { until: number }>(
      ({ input }) => new Promise((resolve) => setTimeout(resolve, input.until - Date.now())),
    );
    const ours = createActor(timed(fromDeadline(Date.now)), { input: { until } }).start();
    const theirs = createActor(timed(promiseTimer), { input: { until } }).start();
    const persisted = ours.getPersistedSnapshot();
    expect(persisted).toEqual(theirs.getPersistedSnapshot());
    ours.stop();
    theirs.stop();

    // A snapshot written before this actor existed (by fromPromise) restores to a timer that still fires on time.
    const restored = createActor(timed(fromDeadline(Date.now)), {
      snapshot: JSON.parse(JSON.stringify(persisted)) as never,
      input: { until },
    }).start();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(restored.getSnapshot().value).toBe('waiting');
    await vi.advanceTimersByTimeAsync(1);
    expect(restored.getSnapshot().value).toBe('elapsed');
  });

  it('stops with its parent without firing', async () => {
    const actor = createActor(timed(fromDeadline(Date.now)), { input: { until: Date.now() + 5_000 } }).start();
    actor.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(actor.getSnapshot().status).toBe('stopped');
  });
});
