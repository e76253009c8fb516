/**
 * Outages are not provider failures (issue 16): how errors are classified, how a call waits for its service, how a
 * stage rides out an outage without spending its attempt, and what `/healthz` reports. The end-to-end proofs, with
 * real servers stopped and started, are test/faults/outage.*.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor, toPromise } from 'xstate';
import type { StageInput } from '../../machines/blog.machine';
import { createBlogActors } from '../../src/actors/blog.actors';
import { isConnectionFailure, StageFailureError } from '../../src/errors';
import { downServices } from '../../src/http/health';
import type { TextWriter } from '../../src/providers/text.port';
import { createStoreSlots } from '../../src/runtime/store.shard';
import { untilReachable, waitingForService } from '../../src/runtime/until.reachable';

/** What node-postgres gives when the server is gone, wrapped the way Drizzle wraps it. */
const refused = () =>
  Object.assign(new Error('Failed query: select 1'), {
    cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
  });

describe('isConnectionFailure', () => {
  it.each([
    ['a refused connection, wrapped by Drizzle', refused()],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['an immediate shutdown (57P01)', Object.assign(new Error('terminating connection'), { code: '57P01' })],
    [
      'a server still recovering (57P03)',
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
    ],
    ['a connection exception (08006)', Object.assign(new Error('connection failure'), { code: '08006' })],
    ['a pool that cannot connect', new Error('timeout exceeded when trying to connect')],
    ['Redis gone (ioredis)', new Error('Connection is closed.')],
  ])('says yes to %s', (_, error) => {
    expect(isConnectionFailure(error)).toBe(true);
  });

  it.each([
    [
      'a provider failure, even one caused by a refused connection',
      new StageFailureError('WIX_NETWORK', 'x', true, undefined, { cause: refused().cause }),
    ],
    ['a constraint violation', Object.assign(new Error('duplicate key value'), { code: '23505' })],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a non-error', 'oops'],
  ])('says no to %s', (_, error) => {
    expect(isConnectionFailure(error)).toBe(false);
  });
});

describe('untilReachable', () => {
  it('repeats a call that cannot reach its service until it goes through', async () => {
    let tries = 0;
    const waits: number[] = [];
    const value = await untilReachable(
      async () => {
        if (++tries < 3) throw refused();
        return 'row';
      },
      { service: 'postgres', baseDelayMs: 1, onWait: (_e, n) => waits.push(n) },
    );
    expect({ value, tries, waits }).toEqual({ value: 'row', tries: 3, waits: [1, 2] });
  });

  it('passes any other error on at once', async () => {
    let tries = 0;
    const bug = new Error('duplicate key value');
    await expect(untilReachable(() => (tries++, Promise.reject(bug)), { service: 'postgres' })).rejects.toBe(bug);
    expect(tries).toBe(1);
  });

  it('wraps every method of a port', async () => {
    let fail = 2;
    const port = {
      get: (key: string) => (fail-- > 0 ? Promise.reject(refused()) : Promise.resolve(`value of ${key}`)),
    };
    const waiting = waitingForService(port, { service: 'postgres', baseDelayMs: 1 });
    await expect(waiting.get('wix.post')).resolves.toBe('value of wix.post');
  });
});

describe('a stage that meets an outage', () => {
  const input: StageInput = {
    blogId: 'b1',
    instanceId: 's1',
    request: { keywords: [] },
    idea: { title: 'Tea', summary: '' },
    attempt: 1,
  };
  function actorsWith(generateArticle: TextWriter['generateArticle']) {
    const phases: string[] = [];
    const waits: string[] = [];
    const actors = createBlogActors({
      writer: { name: 'test', generateIdeas: () => Promise.reject(new Error('unused')), generateArticle },
      images: { name: 'test', createHeaderImage: () => Promise.reject(new Error('unused')) },
      publisher: { name: 'test', publish: () => Promise.reject(new Error('unused')) },
      slots: createStoreSlots(1),
      onCall: (_stage, phase) => phases.push(phase),
      onInfrastructureWait: (stage) => waits.push(stage),
    });
    return { actors, phases, waits };
  }
  const article = { title: 'Tea', excerpt: 'Tea.', markdown: 'Tea.', html: '<p>Tea.</p>' };

  it('runs the same attempt again once it waited: no failure reaches the machine', async () => {
    let calls = 0;
    const { actors, phases, waits } = actorsWith(async () => {
      if (++calls === 1) throw refused();
      return article;
    });
    const output = await toPromise(createActor(actors.article, { input }).start());
    expect(output.result).toEqual(article);
    expect({ calls, phases, waits }).toEqual({ calls: 2, phases: ['start', 'ok'], waits: ['article'] });
  });

  it('still fails on a provider failure, once, as the machine needs to decide', async () => {
    let calls = 0;
    const { actors, phases } = actorsWith(() => {
      calls++;
      return Promise.reject(
        new StageFailureError('OPENAI_UNAVAILABLE', 'connection refused', true, undefined, { cause: refused().cause }),
      );
    });
    await expect(toPromise(createActor(actors.article, { input }).start())).rejects.toMatchObject({
      code: 'OPENAI_UNAVAILABLE',
      retryable: true,
    });
    expect({ calls, phases }).toEqual({ calls: 1, phases: ['start', 'error'] });
  });
});

describe('downServices (/healthz)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is empty when everything answers', async () => {
    expect(
      await downServices({ ping: async () => undefined, busReachable: () => true, redisReachable: () => true }),
    ).toEqual([]);
  });

  it('names each service that is down', async () => {
    const down = await downServices({
      ping: () => Promise.reject(refused()),
      busReachable: () => false,
      redisReachable: () => false,
    });
    expect(down).toEqual(['postgres', 'nats', 'redis']);
  });

  it('counts a database that does not answer within 2 s as down', async () => {
    vi.useFakeTimers();
    const answer = downServices({ ping: () => new Promise<void>(() => undefined) });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(await answer).toEqual(['postgres']);
  });
});
