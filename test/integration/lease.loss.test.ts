/**
 * What a process does about a store it loses or can no longer vouch for: the lease manager (with a scripted lease
 * repository and this process's clock under the test's control), the shards, the provider limiter wired to them as
 * the runtime wires it (`guardLimiters`), and the real Wix adapter against the fake Wix over HTTP.
 *
 * - A store lost at a renewal: its calls still queued in the limiter are aborted (never made), its actors dropped;
 *   another store's calls go on. Without `abortStore` (or without the wiring) the lost store's calls are made.
 * - A lease that ran out by the local clock (the renewals did not get through): no Wix request leaves for that store,
 *   counted at the fake Wix, also in the middle of a publish; once renewed, publishing goes on. Without the guard
 *   (`allowed` ignored in limiter.ts) the fake receives the requests.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { LeaseClaim, LeaseRepo } from '../../src/db/lease.repo';
import { LeaseExpiredError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import { createProviderLimiter, StoreLostError } from '../../src/providers/limiter';
import type { ProviderRefs } from '../../src/db/refs.port';
import { createWixPublisher } from '../../src/providers/wix.publisher';
import { createLeaseManager } from '../../src/runtime/leases';
import { createShards, guardLimiters, leaseMarginMs } from '../../src/runtime/store.shard';
import { startFakeWix, type FakeWix } from '../support/fake.wix';

const TTL = 6_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;

/** A lease repository that holds every store claimed and renews only the stores in `keep`. */
function scriptedLeases(keep: Set<string>) {
  let epoch = 0;
  return {
    claimMany: async (ids: string[]) =>
      new Map<string, LeaseClaim>(ids.map((id) => [id, { held: true, takeover: true, epoch: ++epoch }])),
    renew: async (ids: string[]) => new Set(ids.filter((id) => keep.has(id))),
    release: async () => undefined,
    orphans: async () => [],
    dueTimers: async () => [],
  } as unknown as LeaseRepo;
}

function fakeSupervisor(live: string[]) {
  return {
    rehydrateStores: async () => new Map<string, number>(),
    dropStore: vi.fn(() => 0),
    liveStores: () => new Set(live),
    load: async () => undefined,
  };
}

let clock = 1_000_000;
const now = () => clock;

it('a store lost at a renewal: its queued provider calls are aborted, its actors dropped, other stores go on', async () => {
  const shards = createShards({ ttlMs: TTL, now });
  const limiter = createProviderLimiter({ name: 'test', concurrency: 1, rpm: 1_000 });
  guardLimiters(shards, [limiter]);
  const supervisor = fakeSupervisor(['lost-shop', 'kept-shop']);
  const leases = createLeaseManager({
    repo: scriptedLeases(new Set(['kept-shop'])),
    supervisor,
    log: quiet,
    ttlMs: TTL,
    shards,
    now,
  });
  expect(await leases.ensure('lost-shop')).toEqual({ mine: true });
  expect(await leases.ensure('kept-shop')).toEqual({ mine: true });

  const made: string[] = [];
  let unblock!: () => void;
  const blocker = limiter.limit('kept-shop', () => new Promise<void>((r) => (unblock = r)));
  await vi.waitFor(() => expect(limiter.running()).toBe(1));
  const queued = ['lost-shop', 'lost-shop', 'kept-shop'].map((id, i) =>
    limiter
      .limit(id, async () => void made.push(`${id}#${i}`))
      .then(
        () => 'made',
        (e: unknown) => e,
      ),
  );
  expect(limiter.queued()).toBe(3);

  await leases.start(); // one tick: lost-shop's renewal fails
  await leases.stop();
  expect(supervisor.dropStore).toHaveBeenCalledWith('lost-shop');
  expect(limiter.queued()).toBe(1);
  unblock();
  await blocker;
  const outcomes = await Promise.all(queued);
  expect(outcomes[0]).toBeInstanceOf(StoreLostError);
  expect(outcomes[1]).toBeInstanceOf(StoreLostError);
  expect(outcomes[2]).toBe('made');
  expect(made).toEqual(['kept-shop#2']);
  await limiter.stop();
});

let fake: FakeWix;
beforeEach(async () => {
  fake = await startFakeWix();
});
afterEach(async () => {
  await fake.close();
});

function memoryRefs(): ProviderRefs {
  const map = new Map<string, string>();
  return {
    get: async (blogId, key) => map.get(`${blogId}\u0000${key}`),
    put: async ({ blogId }, key, value) => void map.set(`${blogId}\u0000${key}`, value),
  };
}

const publishCall = (blogId: string, instanceId: string) => ({
  blogId,
  instanceId,
  request: { topic: 't', keywords: [], authorMemberId: '8a8b9b73-4da8-47a5-8268-4396e68a0605' },
  article: { title: `Post ${blogId}`, excerpt: 'x', markdown: '', html: '<p>Body</p>' },
  attempt: 1,
  signal: new AbortController().signal,
});

it('no Wix request leaves for a store whose lease ran out by this process’s clock; a renewal lets it go on', async () => {
  const shards = createShards({ ttlMs: TTL, now });
  const limiter = createProviderLimiter({ name: 'wix', concurrency: 4, rpm: 1_000, perStore: true });
  guardLimiters(shards, [limiter]);
  const repo = scriptedLeases(new Set(['shop']));
  const leases = createLeaseManager({
    repo,
    supervisor: fakeSupervisor(['shop']),
    log: quiet,
    ttlMs: TTL,
    shards,
    now,
  });
  let onRequest = () => undefined as void;
  const wix = createWixPublisher({
    appId: fake.appId,
    appSecret: fake.appSecret,
    baseUrl: fake.url,
    refs: memoryRefs(),
    limit: (id, fn) => limiter.limit(id, fn).finally(() => onRequest()),
  });
  const sent = () => fake.requests.length;

  clock = 2_000_000;
  await leases.ensure('shop'); // claimed at `clock`: valid until clock + TTL - margin, by this clock
  await wix.publish(publishCall('b-1', 'shop'));
  const afterFirst = sent();
  expect(afterFirst).toBeGreaterThan(2);

  // The renewals did not get through: by our clock the lease has run out (the margin before its end).
  clock += TTL - leaseMarginMs(TTL);
  await expect(wix.publish(publishCall('b-2', 'shop'))).rejects.toBeInstanceOf(LeaseExpiredError);
  expect(sent(), 'a Wix request left for a store whose lease had run out by our clock').toBe(afterFirst);

  // A renewal that gets through lets the calls go again.
  await leases.start();
  await leases.stop();
  expect(shards.leaseValid('shop')).toBe(true);
  // ...and the lease running out in the middle of a publish stops it at the next request.
  let seen = 0;
  onRequest = () => {
    if (++seen === 2) clock += TTL;
  };
  await expect(wix.publish(publishCall('b-3', 'shop'))).rejects.toBeInstanceOf(LeaseExpiredError);
  expect(sent() - afterFirst).toBe(2);
  expect(fake.posts('shop').map((p) => p.title)).toEqual(['Post b-1']);
  await limiter.stop();
});
