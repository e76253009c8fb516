/**
 * The provider limiter's port: what callers see (ProviderLimiter and its options, events and errors) and what its
 * gates implement (Gate, GateFactory), in memory (limiter.local.ts) or in Redis (limiter.redis.ts). limiter.ts says
 * how the limits work.
 */

/** One observable step of a call through the limiter. */
export interface LimiterEvent {
  kind: 'queued' | 'started' | 'done' | 'rejected';
  name: string;
  instanceId: string;
  /** On `started`: how long the call waited in the queue. */
  waitMs?: number;
}

/** The logger subset the limiter uses (a pino logger fits). */
export interface LimiterLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ProviderLimiterOptions {
  /** Provider name, e.g. `openai`; also names the Redis keys, so processes sharing a name share the limits. */
  name: string;
  /** Calls in flight at once (>= 1). */
  concurrency: number;
  /** Calls started in any sliding window of `windowMs` (>= 1). */
  rpm: number;
  /** Limits per instanceId (store) instead of per provider. */
  perStore?: boolean;
  /** Share the limits with every process using the same Redis, prefix and name. */
  redis?: { url: string; prefix?: string };
  onEvent?: (e: LimiterEvent) => void;
  /** Sliding window length; 60_000 (one minute, so `rpm` means per minute). Tests use shorter ones. */
  windowMs?: number;
  /** Redis only: a lease not renewed for this long is freed (a dead process's slots come back). 30_000. */
  leaseMs?: number;
  /** Where the limiter logs Redis outages; console by default. */
  log?: LimiterLog;
}

export interface ProviderLimiter {
  /** Runs `fn` once a slot is free for `instanceId`'s turn; resolves or rejects with `fn`'s outcome. */
  limit<T>(instanceId: string, fn: () => Promise<T>): Promise<T>;
  /** Calls waiting for a slot. */
  queued(): number;
  /** Calls in flight in this process. */
  running(): number;
  /**
   * Rejects every queued call (LimiterStoppedError), clears every timer and closes the Redis connection.
   * Calls already running are left to finish; with Redis their leases are not released but expire after leaseMs,
   * so other processes never see more in flight than there is.
   */
  stop(): Promise<void>;
  /** False while the shared limits' Redis cannot be reached (calls wait meanwhile); always true without Redis. */
  reachable(): boolean;
  /**
   * Rejects the calls of `instanceId` still queued (StoreLostError): this process lost the store, so none of them
   * may start. Calls already running are left to finish. Returns how many were aborted.
   */
  abortStore(instanceId: string): number;
  /**
   * Sets the check made right before each call starts (its slot held): a call of a store `allowed` refuses is not
   * made; it rejects with LeaseExpiredError and gives its slot back. Used with "this process's lease on the store
   * has not run out by its own clock".
   */
  guard(allowed: (instanceId: string) => boolean): void;
}

/** Raised for the queued calls of a store this process lost (they are never made). */
export class StoreLostError extends Error {
  constructor(name: string, instanceId: string) {
    super(`provider limiter '${name}': store ${instanceId} is no longer held here; call not made`);
    this.name = 'StoreLostError';
  }
}

/** Raised for calls still queued when the limiter stops, and for calls made after. */
export class LimiterStoppedError extends Error {
  constructor(name: string) {
    super(`provider limiter '${name}' is stopped`);
    this.name = 'LimiterStoppedError';
  }
}

/** A held slot: releasing it frees the concurrency slot (the start stays in the window). */
export interface Lease {
  release(): void;
}

/** A lease whose release frees `free()` exactly once, however often it is called. */
export function leaseOnce(free: () => void): Lease {
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      free();
    },
  };
}

/** The result of one try: a lease, or a hint when to try again (undefined: when a local call finishes). */
export type Attempt = { ok: true; lease: Lease } | { ok: false; retryInMs: number | undefined };

/** One limit domain (the provider, or one store with perStore). */
export interface Gate {
  tryAcquire(): Attempt | Promise<Attempt>;
  /** Nothing held and nothing in the window: the gate may be dropped. */
  idle(): boolean;
}

/** Makes the gates of one limiter. */
export interface GateFactory {
  gate(laneKey: string): Gate;
  stop(): Promise<void>;
  /** Whether the shared state can be reached now (local gates: always). */
  reachable?(): boolean;
}

/** How long after its start a call's request surely reached the provider (limiter.ts says why). */
export const ARRIVAL_SLACK_MS = 2_000;
