/** The ownership timings derive from the lease TTL and agree with each other, at any TTL. */
import { describe, expect, it } from 'vitest';
import { ownershipTimings } from '../../src/runtime/ownership.timing';

describe('ownershipTimings', () => {
  it('keeps the values of the default TTL (15 s)', () => {
    expect(ownershipTimings(15_000)).toEqual({
      leaseTtlMs: 15_000,
      renewEveryMs: 5_000,
      routerWaitMs: 18_000,
      forwardTimeoutMs: 10_000,
      ackWaitMs: 30_000,
      workingEveryMs: 10_000,
    });
  });

  it.each([300, 3_000, 15_000, 40_000, 120_000, 600_000])('agrees with itself at a TTL of %i ms', (ttl) => {
    const t = ownershipTimings(ttl);
    expect(t.renewEveryMs * 2).toBeLessThan(ttl + 400); // a lease survives a missed renewal
    expect(t.routerWaitMs).toBeGreaterThan(ttl); // a command outwaits a dead owner's lease
    expect(t.forwardTimeoutMs).toBeLessThanOrEqual(t.routerWaitMs);
    expect(t.workingEveryMs * 3).toBeLessThanOrEqual(t.ackWaitMs); // working() well within the ack wait
    expect(t.ackWaitMs).toBeGreaterThanOrEqual(2 * t.renewEveryMs);
  });
});
