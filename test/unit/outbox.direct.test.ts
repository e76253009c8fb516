/**
 * The outbox's direct path: an event goes out right after its commit, in order per blog, and only when its blog's
 * previous event is known to be out; anything else is left to the relay, whose acknowledgements bring the blog
 * back to the direct path.
 */
import { describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.port';
import { createDirectPublisher, type CommittedEvent } from '../../src/bus/outbox.direct';
import { subjectsFor } from '../../src/bus/subjects';
import { createLogger } from '../../src/logger';

/** A bus that keeps what was stored, by msgId (as JetStream deduplicates); `fail` may refuse a publish. */
function streamBus(fail: (msgId: string) => boolean = () => false) {
  const stored: string[] = [];
  const attempts: string[] = [];
  const bus: Bus = {
    kind: 'memory',
    async publish(_subject, _payload, opts) {
      const id = opts!.msgId!;
      attempts.push(id);
      await new Promise((r) => setTimeout(r, 1));
      if (fail(id)) throw new Error('no PubAck');
      if (!stored.includes(id)) stored.push(id);
    },
    subscribe: () => () => undefined,
    close: async () => undefined,
  };
  return { bus, stored, attempts };
}

const event = (blogId: string, seq: number, status = 'GENERATING_CONTENT'): CommittedEvent => ({
  blogId,
  instanceId: 'store-1',
  seq,
  payload: { blogId, seq, status },
});

function setup(fail?: (msgId: string) => boolean) {
  const { bus, stored, attempts } = streamBus(fail);
  const kicks: number[] = [];
  const ahead: string[] = [];
  const direct = createDirectPublisher({
    bus,
    subjects: subjectsFor('t'),
    log: createLogger('silent', 'test'),
    relay: { kick: () => kicks.push(Date.now()), sentAhead: (id) => ahead.push(id) },
  });
  return { direct, stored, attempts, kicks, ahead };
}

describe('outbox direct path', () => {
  it('sends each committed event at once, in order per blog, and hands each to the relay as sent ahead', async () => {
    const { direct, stored, kicks, ahead } = setup();
    direct.committed([event('a', 1), event('b', 1)]);
    direct.committed([event('a', 2), event('a', 3)]); // a's second commit while its first is still being sent
    direct.committed([event('b', 2)]);
    await direct.settle();
    expect(stored.filter((id) => id.startsWith('a:'))).toEqual(['a:1', 'a:2', 'a:3']);
    expect(stored.filter((id) => id.startsWith('b:'))).toEqual(['b:1', 'b:2']);
    expect(new Set(ahead)).toEqual(new Set(stored));
    expect(kicks).toEqual([]); // nothing was left to the relay
  });

  it('leaves an event to the relay when its blog has an earlier event not known to be out', async () => {
    const { direct, stored, kicks } = setup();
    direct.committed([event('restored', 7)]); // first event after a restore: 6 may not be out yet
    await direct.settle();
    expect(stored).toEqual([]);
    expect(kicks).toHaveLength(1);
    // The relay sends 7; from 8 on the blog is back on the direct path.
    direct.published('restored', 7, 'GENERATING_IMAGE');
    direct.committed([event('restored', 8)]);
    await direct.settle();
    expect(stored).toEqual(['restored:8']);
  });

  it('after a failed publish sends none of that blog`s later events until the relay has sent the failed one', async () => {
    let down = true;
    const { direct, stored, kicks } = setup((id) => down && id === 'x:2');
    direct.committed([event('x', 1), event('x', 2), event('x', 3)]);
    direct.committed([event('y', 1)]);
    await direct.settle();
    expect(stored).toEqual(['x:1', 'y:1']); // x:3 must not overtake x:2
    expect(kicks.length).toBeGreaterThan(0);
    down = false;
    direct.committed([event('x', 4)]);
    await direct.settle();
    expect(stored).not.toContain('x:4');
    direct.published('x', 4, 'GENERATING_IMAGE'); // the relay sent x:2..4 in order
    direct.committed([event('x', 5)]);
    await direct.settle();
    expect(stored).toEqual(['x:1', 'y:1', 'x:5']);
  });

  it('forgets a blog when it rests (DONE, CANCELLED, FAILED) and ignores the relay`s news of blogs it never had', async () => {
    const { direct } = setup();
    direct.committed([event('d', 1), event('d', 2, 'DONE')]);
    direct.committed([event('f', 1), event('f', 2, 'FAILED')]);
    direct.published('someone-else', 3, 'PUBLISHING');
    await direct.settle();
    expect(direct.size()).toBe(0);
  });
});
