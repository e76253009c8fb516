/** Per-store admission slots and the store interleaving used at rehydration. */
import { describe, expect, it } from 'vitest';
import { createStoreSlots } from '../../src/runtime/store.shard';
import { interleaveByStore } from '../../src/runtime/supervisor';

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Starts `acquire` and records when (and whether) it settles. */
function track(promise: Promise<void>) {
  const state = { granted: false, error: undefined as unknown };
  promise.then(
    () => (state.granted = true),
    (error: unknown) => (state.error = error),
  );
  return state;
}

describe('store slots', () => {
  it('admits at most maxPerStore blogs of one store at once', async () => {
    const slots = createStoreSlots(2);
    const a = track(slots.acquire('store-1', 'a'));
    const b = track(slots.acquire('store-1', 'b'));
    const c = track(slots.acquire('store-1', 'c'));
    await settle();
    expect([a.granted, b.granted, c.granted]).toEqual([true, true, false]);
    expect(slots.active('store-1')).toBe(2);
    expect(slots.waiting('store-1')).toBe(1);
  });

  it('is re-entrant: a blog that holds a slot gets it again at once, without taking another', async () => {
    const slots = createStoreSlots(1);
    await slots.acquire('store-1', 'a');
    await slots.acquire('store-1', 'a'); // next stage of the same blog
    await slots.acquire('store-1', 'a');
    expect(slots.active('store-1')).toBe(1);
    slots.release('a');
    expect(slots.active('store-1')).toBe(0);
  });

  it('admits the next waiter first come, first served, when a slot is released', async () => {
    const slots = createStoreSlots(1);
    await slots.acquire('store-1', 'a');
    const order: string[] = [];
    for (const id of ['b', 'c', 'd']) void slots.acquire('store-1', id).then(() => order.push(id));
    await settle();
    expect(order).toEqual([]);

    slots.release('a');
    await settle();
    expect(order).toEqual(['b']);
    slots.release('b');
    await settle();
    expect(order).toEqual(['b', 'c']);
    slots.release('c');
    await settle();
    expect(order).toEqual(['b', 'c', 'd']);
    expect(slots.waiting('store-1')).toBe(0);
    expect(slots.active('store-1')).toBe(1);
  });

  it('does not let a newcomer overtake waiters when a slot frees up', async () => {
    const slots = createStoreSlots(1);
    await slots.acquire('store-1', 'a');
    const b = track(slots.acquire('store-1', 'b'));
    slots.release('a');
    const late = track(slots.acquire('store-1', 'late'));
    await settle();
    expect(b.granted).toBe(true);
    expect(late.granted).toBe(false);
  });

  it('treats a release of a blog holding nothing as a no-op', async () => {
    const slots = createStoreSlots(1);
    await slots.acquire('store-1', 'a');
    slots.release('never-acquired');
    slots.release('a');
    slots.release('a');
    expect(slots.active('store-1')).toBe(0);
  });

  it('keeps stores independent: a full store does not hold back another', async () => {
    const slots = createStoreSlots(1);
    await slots.acquire('busy', 'a');
    const waiting = track(slots.acquire('busy', 'b'));
    const other = track(slots.acquire('quiet', 'x'));
    await settle();
    expect(waiting.granted).toBe(false);
    expect(other.granted).toBe(true);
    expect(slots.active('quiet')).toBe(1);
    slots.release('x'); // releasing in one store admits nobody of another
    await settle();
    expect(waiting.granted).toBe(false);
  });

  it('removes a waiter whose signal aborts, rejecting it, and admits the next one instead', async () => {
    const slots = createStoreSlots(1);
    await slots.acquire('store-1', 'a');
    const controller = new AbortController();
    const b = track(slots.acquire('store-1', 'b', controller.signal));
    const c = track(slots.acquire('store-1', 'c'));
    await settle();
    expect(slots.waiting('store-1')).toBe(2);

    controller.abort();
    await settle();
    expect(b.error).toBeInstanceOf(Error);
    expect(slots.waiting('store-1')).toBe(1);
    slots.release('a');
    await settle();
    expect(c.granted).toBe(true);
    expect(b.granted).toBe(false);
    expect(slots.active('store-1')).toBe(1);
  });

  it('rejects with the abort reason when it is an Error', async () => {
    const slots = createStoreSlots(1);
    await slots.acquire('store-1', 'a');
    const controller = new AbortController();
    const pending = slots.acquire('store-1', 'b', controller.signal);
    const reason = new Error('blog cancelled');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it('records slots held before a restart with hold(), even above the cap, and admits nobody until below it', async () => {
    const slots = createStoreSlots(2);
    for (const id of ['a', 'b', 'c']) slots.hold('store-1', id);
    expect(slots.active('store-1')).toBe(3);
    const d = track(slots.acquire('store-1', 'd'));
    await slots.acquire('store-1', 'a'); // a rehydrated holder keeps going
    slots.release('a');
    await settle();
    expect(d.granted).toBe(false); // 2 held: still at the cap
    slots.release('b');
    await settle();
    expect(d.granted).toBe(true);
    expect(slots.active('store-1')).toBe(2);
  });
});

describe('interleaveByStore', () => {
  const row = (instanceId: string, blogId: string) => ({ instanceId, blogId });

  it('orders rows round-robin across stores, keeping each store’s own order', () => {
    const rows = [row('a', 'a1'), row('a', 'a2'), row('a', 'a3'), row('b', 'b1'), row('c', 'c1'), row('c', 'c2')];
    expect(interleaveByStore(rows).map((r) => r.blogId)).toEqual(['a1', 'b1', 'c1', 'a2', 'c2', 'a3']);
  });

  it('keeps every row exactly once', () => {
    const rows = Array.from({ length: 100 }, (_, i) => row(`s${i % 7}`, `blog-${i}`));
    const out = interleaveByStore(rows);
    expect(out).toHaveLength(100);
    expect(new Set(out)).toEqual(new Set(rows));
  });

  it('gives a small store its first turn early even behind a large one', () => {
    const rows = [...Array.from({ length: 50 }, (_, i) => row('big', `big-${i}`)), row('small', 'small-0')];
    expect(interleaveByStore(rows).findIndex((r) => r.instanceId === 'small')).toBe(1);
  });

  it('handles no rows and one store', () => {
    expect(interleaveByStore([])).toEqual([]);
    expect(interleaveByStore([row('a', '1'), row('a', '2')]).map((r) => r.blogId)).toEqual(['1', '2']);
  });
});
