/**
 * Provider limiter: at most `concurrency` calls in flight and at most `rpm` calls started in any sliding window
 * (`windowMs`, 60 s by default), per provider or, with `perStore`, per store (Wix limits per app instance).
 * A retry by the caller is a new `limit()` call and counts again, so the limits hold retries included.
 *
 * The provider counts a call when the request reaches it, which can be later than when the call started here (a
 * slow connect, a stalled event loop). So when a call ends, its entry in the window moves to the latest moment the
 * request can have arrived: its end, or `ARRIVAL_SLACK_MS` after its start for longer calls (a request that took
 * longer than that to reach the provider has timed out long before). The window seen by the provider then never
 * holds more than `rpm` starts, at the cost of a window up to that slack longer for slow-to-send calls.
 *
 * In front of the limit sits a round-robin queue over stores (FairQueue): when a slot frees, the next store in the
 * ring gets it, so one busy store does not hold back the others.
 *
 * Why not Bottleneck (2.19.5, not a dependency): it is fine locally, but its Redis clustering cannot recover on Redis 7
 * when its settings key expires or its client is marked dead (SETTINGS_KEY_NOT_FOUND / UNKNOWN_CLIENT, see
 * docs/dependencies.md),
 * and it has no per-store round-robin. Why not rate-limiter-flexible: it gives the counter but not the semaphore
 * with leases nor the re-assertion after key loss. The limits here are small (two sorted sets and two Lua scripts,
 * see limiter.redis.ts) on `ioredis` 5.9.3 (pinned: Node >= 12.22, so Node 20 is fine; 6.x is newer and needs
 * Node 20, nothing here needs it). Without `redis` the limits are kept in memory, per process.
 *
 * With `redis` (see limiter.redis.ts for the details):
 * - concurrency is a distributed semaphore: a sorted set of leases scored by expiry; a live process renews its
 *   leases every leaseMs/3, a dead one's leases expire after `leaseMs` (30 s by default) and the slots come back;
 * - rpm is a shared sliding-window log: a sorted set of start times (Redis server time, so no clock skew);
 * - both are checked and taken atomically in one Lua script; the keys expire when idle;
 * - when the keys vanish (FLUSHALL, DEL, a Redis restart without persistence), the next acquire re-creates them and
 *   every process re-asserts its own live leases and its own starts still inside the window at its next heartbeat,
 *   so the limits hold again within leaseMs/3 (in that gap up to one extra set of limits can be used);
 * - when Redis is unreachable: FAIL SAFE BY WAITING. Queued calls wait and retry (backoff up to 2 s) until Redis
 *   answers again; limits are never relaxed to local ones. A loud `error` log says so, repeated every 30 s while
 *   the outage lasts, and an `info` log says when it is over. Calls already running finish normally.
 */
import { FairQueue } from './fair.queue';
import { createRedisGates } from './limiter.redis';

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

interface Job {
  instanceId: string;
  fn: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  queuedAt: number;
}

const GLOBAL_LANE = '*';
/** How long after its start a call's request surely reached the provider (see the header). */
export const ARRIVAL_SLACK_MS = 2_000;
const SWEEP_LANES_OVER = 256;

export function createProviderLimiter(opts: ProviderLimiterOptions): ProviderLimiter {
  const { name } = opts;
  const concurrency = positiveInt(opts.concurrency, 'concurrency');
  const rpm = positiveInt(opts.rpm, 'rpm');
  const windowMs = positiveInt(opts.windowMs ?? 60_000, 'windowMs');
  const leaseMs = positiveInt(opts.leaseMs ?? 30_000, 'leaseMs');
  const log = opts.log ?? consoleLog;
  const emit = (e: LimiterEvent): void => {
    try {
      opts.onEvent?.(e);
    } catch {
      /* an observer's bug must not break the limiter */
    }
  };
  const gates: GateFactory = opts.redis
    ? createRedisGates({ name, concurrency, rpm, windowMs, leaseMs, log, ...opts.redis })
    : createLocalGates({ concurrency, rpm, windowMs });

  let stopped = false;
  let inFlight = 0;
  let waiting = 0;
  const lanes = new Map<string, Lane>();

  /** A gate with its round-robin queue and the pump that starts calls while the gate allows. */
  class Lane {
    readonly queue = new FairQueue<Job>();
    running = 0;
    private pumping = false;
    private again = false;
    private wake: NodeJS.Timeout | undefined;

    constructor(
      readonly key: string,
      readonly gate: Gate,
    ) {}

    idle(): boolean {
      return this.queue.size === 0 && this.running === 0 && !this.pumping && this.gate.idle();
    }

    pump(): void {
      if (this.pumping) {
        this.again = true; // the running pump loops once more instead of sleeping
        return;
      }
      void this.run();
    }

    private async run(): Promise<void> {
      this.pumping = true;
      this.clearWake();
      try {
        while (!stopped && this.queue.size > 0) {
          this.again = false;
          const attempt = await this.gate.tryAcquire();
          if (stopped) {
            if (attempt.ok) attempt.lease.release();
            return;
          }
          if (!attempt.ok) {
            if (this.again) continue; // a slot freed or work arrived while we asked
            this.sleep(attempt.retryInMs);
            return;
          }
          const next = this.queue.shift();
          if (next === undefined) {
            attempt.lease.release();
            return;
          }
          this.start(next.item, attempt.lease);
        }
      } catch (error) {
        // Gates report their own failures as retry hints; this is a bug guard so calls never hang silently.
        log.error({ name, lane: this.key, err: errorText(error) }, 'provider limiter pump failed; retrying');
        this.sleep(1_000);
      } finally {
        this.pumping = false;
      }
    }

    private start(job: Job, lease: Lease): void {
      waiting -= 1;
      this.running += 1;
      inFlight += 1;
      emit({ kind: 'started', name, instanceId: job.instanceId, waitMs: Date.now() - job.queuedAt });
      // An async wrapper turns a synchronous throw from `fn` into a rejection, passed on as it is.
      const result = (async () => job.fn())();
      result.then(job.resolve, job.reject).finally(() => {
        this.running -= 1;
        inFlight -= 1;
        lease.release();
        emit({ kind: 'done', name, instanceId: job.instanceId });
        if (!stopped) this.pump();
      });
    }

    private sleep(ms: number | undefined): void {
      this.clearWake();
      if (ms === undefined || stopped) return; // woken by the next local release
      this.wake = setTimeout(
        () => {
          this.wake = undefined;
          this.pump();
        },
        Math.max(1, Math.ceil(ms)),
      );
    }

    clearWake(): void {
      if (this.wake !== undefined) clearTimeout(this.wake);
      this.wake = undefined;
    }
  }

  function laneFor(instanceId: string): Lane {
    const key = opts.perStore ? instanceId : GLOBAL_LANE;
    let lane = lanes.get(key);
    if (lane === undefined) {
      if (lanes.size >= SWEEP_LANES_OVER) {
        for (const [k, l] of lanes) if (l.idle()) lanes.delete(k);
      }
      lane = new Lane(key, gates.gate(key));
      lanes.set(key, lane);
    }
    return lane;
  }

  return {
    limit<T>(instanceId: string, fn: () => Promise<T>): Promise<T> {
      if (stopped) {
        emit({ kind: 'rejected', name, instanceId });
        return Promise.reject(new LimiterStoppedError(name));
      }
      return new Promise<T>((resolve, reject) => {
        const lane = laneFor(instanceId);
        lane.queue.push(instanceId, {
          instanceId,
          fn,
          resolve: resolve as (value: unknown) => void,
          reject,
          queuedAt: Date.now(),
        });
        waiting += 1;
        emit({ kind: 'queued', name, instanceId });
        lane.pump();
      });
    },
    queued: () => waiting,
    running: () => inFlight,
    reachable: () => gates.reachable?.() ?? true,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      for (const lane of lanes.values()) {
        lane.clearWake();
        for (const job of lane.queue.drain()) {
          waiting -= 1;
          emit({ kind: 'rejected', name, instanceId: job.instanceId });
          job.reject(new LimiterStoppedError(name));
        }
      }
      await gates.stop();
    },
  };
}

/** In-memory gates: a counter for concurrency and a log of start times for the sliding window. */
function createLocalGates(opts: { concurrency: number; rpm: number; windowMs: number }): GateFactory {
  return {
    gate(): Gate {
      let inFlight = 0;
      const starts: number[] = []; // ascending; starts[head..] are inside the window
      let head = 0;
      const prune = (now: number): void => {
        while (head < starts.length && (starts[head] as number) <= now - opts.windowMs) head += 1;
        if (head > 1024 && head * 2 > starts.length) {
          starts.splice(0, head);
          head = 0;
        }
      };
      return {
        tryAcquire(): Attempt {
          const now = Date.now();
          prune(now);
          if (inFlight >= opts.concurrency) return { ok: false, retryInMs: undefined };
          if (starts.length - head >= opts.rpm) {
            return { ok: false, retryInMs: (starts[head] as number) + opts.windowMs - now };
          }
          inFlight += 1;
          starts.push(now);
          return {
            ok: true,
            lease: leaseOnce(() => {
              inFlight -= 1;
              // Count the start from its latest possible arrival at the provider (see the header).
              const index = starts.indexOf(now, head);
              if (index < 0) return; // already out of the window
              starts.splice(index, 1);
              const arrived = Math.min(Date.now(), now + ARRIVAL_SLACK_MS);
              let at = starts.length;
              while (at > head && (starts[at - 1] as number) > arrived) at -= 1;
              starts.splice(at, 0, arrived);
            }),
          };
        },
        idle(): boolean {
          prune(Date.now());
          return inFlight === 0 && starts.length - head === 0;
        },
      };
    },
    async stop() {},
  };
}

function positiveInt(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 1) throw new RangeError(`provider limiter: ${what} must be >= 1`);
  return Math.floor(value);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

const consoleLog: LimiterLog = {
  info: (obj, msg) => console.info(`[limiter] ${msg}`, obj),
  warn: (obj, msg) => console.warn(`[limiter] ${msg}`, obj),
  error: (obj, msg) => console.error(`[limiter] ${msg}`, obj),
};
