/** Bus helpers: NATS-style subject matching and the blogId a `create` without one gets from its message. */
import { describe, expect, it } from 'vitest';
import { blogIdForMessage } from '../../src/bus/command.consumer';
import { subjectMatches, subjectsFor } from '../../src/bus/subjects';

describe('subjectMatches', () => {
  it.each([
    ['blogs.create', 'blogs.create', true],
    ['blogs.create', 'blogs.select', false],
    ['blogs.create', 'blogs.create.x', false],
    ['blogs.create.x', 'blogs.create', false],
    ['blogs.*', 'blogs.create', true],
    ['blogs.*', 'blogs', false],
    ['blogs.*', 'blogs.events.a', false],
    ['blogs.events.*.*', 'blogs.events.store.blog', true],
    ['blogs.events.*.b1', 'blogs.events.store.b2', false],
    ['blogs.events.>', 'blogs.events.store.blog', true],
    ['blogs.events.>', 'blogs.events.store', true],
    ['blogs.events.>', 'blogs.events', false],
    ['blogs.events.store.>', 'blogs.events.other.blog', false],
    ['>', 'anything.at.all', true],
    ['*', 'one', true],
    ['*', 'one.two', false],
    ['blogs.>', 'other.create', false],
  ])('%s matches %s: %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
  });

  it('matches the subjects a prefix produces', () => {
    const s = subjectsFor('t.inkwell');
    expect(subjectMatches(s.allEvents, s.event('store', 'blog'))).toBe(true);
    expect(subjectMatches(s.storeEvents('store'), s.event('store', 'blog'))).toBe(true);
    expect(subjectMatches(s.storeEvents('other'), s.event('store', 'blog'))).toBe(false);
    expect(subjectMatches(s.allEvents, s.rejected)).toBe(false);
    expect(s.commands.map((c) => s.commandOf(c))).toEqual(['create', 'select', 'cancel', 'retry']);
    expect(s.commandOf('t.inkwell.publish')).toBeUndefined();
    expect(s.commandOf('other.create')).toBeUndefined();
  });
});

describe('blogIdForMessage', () => {
  const uuidShaped = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  it('is deterministic for one message id, and a valid blog id', () => {
    const a = blogIdForMessage({ msgId: 'order-42' });
    expect(a).toMatch(uuidShaped);
    expect(a).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(blogIdForMessage({ msgId: 'order-42' })).toBe(a);
    // The message id wins over the stream sequence: a re-publish lands at another sequence.
    expect(blogIdForMessage({ msgId: 'order-42', streamSeq: 7 })).toBe(a);
    expect(blogIdForMessage({ msgId: 'order-42', streamSeq: 8 })).toBe(a);
  });

  it('differs per message id and per stream sequence', () => {
    const ids = new Set(
      [
        ...Array.from({ length: 50 }, (_, i) => ({ msgId: `m-${i}` })),
        ...Array.from({ length: 50 }, (_, i) => ({ streamSeq: i + 1 })),
      ].map((meta) => blogIdForMessage(meta)),
    );
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(uuidShaped);
    // A message id that looks like a sequence does not collide with that sequence.
    expect(blogIdForMessage({ msgId: '3' })).not.toBe(blogIdForMessage({ streamSeq: 3 }));
  });

  it('is undefined without a message id or stream sequence', () => {
    expect(blogIdForMessage({})).toBeUndefined();
    expect(blogIdForMessage({ msgId: '' })).toBeUndefined();
  });
});
