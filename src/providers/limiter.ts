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
 * with leases nor the re-assertion after key loss. The limits here are small (two sorted sets and three Lua scripts,
 * see limiter.redis.ts and limiter.redis.lua.ts) on `ioredis` 5.9.3 (pinned: Node >= 12.22, so Node 20 is fine; 6.x is newer and needs
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
import { createLocalGates } from './limiter.local';
import { LeaseExpiredError } from '../errors';
import {
  LimiterStoppedError,
  StoreLostError,
  type Gate,
  type GateFactory,
  type Lease,
  type LimiterEvent,
  type LimiterLog,
  type ProviderLimiter,
  type ProviderLimiterOptions,
} from './limiter.port';
import { createRedisGates } from './limiter.redis';

export {
  ARRIVAL_SLACK_MS,
  LimiterStoppedError,
  StoreLostError,
  leaseOnce,
  type Attempt,
  type Gate,
  type GateFactory,
  type Lease,
  type LimiterEvent,
  type LimiterLog,
  type ProviderLimiter,
  type ProviderLimiterOptions,
} from './limiter.port';

interface Job {
  instanceId: string;
  fn: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  queuedAt: number;
}

const GLOBAL_LANE = '*';
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
  let allowed: ((instanceId: string) => boolean) | undefined;
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
      if (allowed && !allowed(job.instanceId)) {
        // The store's lease has run out by our own clock (or the store is gone): no request leaves for it. The
        // caller waits and tries again (an infrastructure wait: the lease is renewed once the database answers).
        lease.release();
        emit({ kind: 'rejected', name, instanceId: job.instanceId });
        job.reject(new LeaseExpiredError(job.instanceId));
        return;
      }
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
    abortStore(instanceId: string): number {
      const lane = lanes.get(opts.perStore ? instanceId : GLOBAL_LANE);
      const jobs = lane?.queue.remove(instanceId) ?? [];
      for (const job of jobs) {
        waiting -= 1;
        emit({ kind: 'rejected', name, instanceId });
        job.reject(new StoreLostError(name, instanceId));
      }
      return jobs.length;
    },
    guard(check: (instanceId: string) => boolean): void {
      allowed = check;
    },
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
