/**
 * Every timing of store ownership, derived from one setting, `INKWELL_LEASE_TTL_MS`, so that they agree:
 * - `renewEveryMs` (TTL / 3, at least 200 ms): the lease manager renews its leases this often, so a lease survives
 *   two missed renewals before it runs out;
 * - `routerWaitMs` (TTL + 3 s): how long a command keeps trying to reach or replace its store's owner. A dead owner's
 *   lease runs out within the TTL; the margin covers the tick that takes the store over;
 * - `forwardTimeoutMs` (at most 10 s, at most the router's wait): how long one forwarded command waits for the
 *   owner's answer before the router tries again;
 * - `ackWaitMs` (two renewals, at least 30 s): JetStream's `ack_wait` on the command consumer. A command in the
 *   hands of a process that died is delivered again after it; a live process never lets it run out, since
 * - `workingEveryMs` (a third of the ack wait): while a command is in hand (waiting for its blog's turn, for its
 *   store's owner, or for its commit), the consumer tells JetStream `working()` this often, however long the wait.
 */

/** The ownership timings of one process. */
export interface OwnershipTimings {
  leaseTtlMs: number;
  renewEveryMs: number;
  routerWaitMs: number;
  forwardTimeoutMs: number;
  ackWaitMs: number;
  workingEveryMs: number;
}

/** Derives every ownership timing from the lease TTL. */
export function ownershipTimings(leaseTtlMs: number): OwnershipTimings {
  const renewEveryMs = Math.max(200, Math.floor(leaseTtlMs / 3));
  const routerWaitMs = leaseTtlMs + 3_000;
  const forwardTimeoutMs = Math.min(10_000, routerWaitMs);
  const ackWaitMs = Math.max(30_000, 2 * renewEveryMs);
  return {
    leaseTtlMs,
    renewEveryMs,
    routerWaitMs,
    forwardTimeoutMs,
    ackWaitMs,
    workingEveryMs: Math.floor(ackWaitMs / 3),
  };
}
