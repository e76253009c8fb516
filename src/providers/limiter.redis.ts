/**
 * Redis-backed gates for the provider limiter: the same limits shared by every process that uses the same Redis,
 * prefix and limiter name.
 *
 * Keys (one hash tag per limit domain, so it also works on a Redis Cluster):
 *   `<prefix>:limiter:{<name>}:sem` / `:win`               the provider's limits
 *   `<prefix>:limiter:{<name>:<instanceId>}:sem` / `:win`  a store's limits (perStore)
 * - `sem`: sorted set of leases, member = lease id, score = expiry (ms, Redis server time). Expired leases are
 *   dropped before counting, so a dead process's slots come back after `leaseMs`. A live process renews its leases
 *   every leaseMs/3 (one heartbeat timer per limiter, only while something is held or recent).
 * - `win`: sorted set of starts, member = lease id, score = start time. Starts older than the window are dropped
 *   before counting: a sliding-window log, exact, `rpm` members at most.
 * - ACQUIRE (Lua, atomic): prune both, refuse if `sem` is full or `win` is full (with a hint: ms until the first
 *   lease expires or the first start leaves the window), else add the lease and the start. All times come from
 *   Redis `TIME`, so the processes' clocks do not matter. Both keys get a PEXPIRE, so idle limits leave nothing.
 * - RELEASE (Lua): frees the lease and moves its start to the latest moment the request can have reached the
 *   provider (limiter.ts says why).
 * - Key loss (FLUSHALL/FLUSHDB, DEL, expiry, a Redis restart without persistence): ACQUIRE re-creates the keys, and
 *   RENEW (the heartbeat) re-adds this process's live leases and its own starts still inside the window (ZADD NX
 *   with their original times). Every process does the same, so within leaseMs/3 the sets again hold everything
 *   that is in flight / started, and the limits hold again. Scripts are sent as EVALSHA with an EVAL fallback, so
 *   a restarted Redis with an empty script cache is fine.
 * - Redis unreachable: acquisition fails safe by WAITING (backoff up to 2 s, forever), never by relaxing to local
 *   limits; one loud error log at once and every 30 s while it lasts, an info log when Redis answers again.
 *   Releases that cannot reach Redis are left to lease expiry (conservative).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ACQUIRE, RELEASE, RENEW, type Scripted } from './limiter.redis.lua';
import {
  ARRIVAL_SLACK_MS,
  leaseOnce,
  type Attempt,
  type Gate,
  type GateFactory,
  type LimiterLog,
} from './limiter.port';

export interface RedisGateOptions {
  url: string;
  prefix?: string;
  name: string;
  concurrency: number;
  rpm: number;
  windowMs: number;
  leaseMs: number;
  log: LimiterLog;
}

/** What this process holds and started in one limit domain: re-asserted by the heartbeat. */
interface LaneState {
  sem: string;
  win: string;
  held: Set<string>;
  /** Own starts, ascending by Redis time. */
  starts: { at: number; id: string }[];
}

const LOUD_EVERY_MS = 30_000;
const MIN_POLL_MS = 25;
const MAX_POLL_MS = 400;
const MAX_HINT_MS = 2_000;

export function createRedisGates(opts: RedisGateOptions): GateFactory {
  const { name, concurrency, rpm, windowMs, leaseMs, log } = opts;
  const base = `${opts.prefix ?? 'inkwell'}:limiter`;
  const token = randomBytes(6).toString('hex');
  let seq = 0;
  let closed = false;

  const redis = new Redis(opts.url, {
    connectionName: `inkwell-limiter-${name}`,
    maxRetriesPerRequest: 1, // a command waiting for a reconnect fails fast; the pump retries with backoff
    commandTimeout: 5_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000), // reconnect forever
  }) as Scripted;
  redis.defineCommand('inkwellLimiterAcquire', { numberOfKeys: 2, lua: ACQUIRE });
  redis.defineCommand('inkwellLimiterRenew', { numberOfKeys: 2, lua: RENEW });
  redis.defineCommand('inkwellLimiterRelease', { numberOfKeys: 2, lua: RELEASE });

  // Outage bookkeeping: loud, but not once per failed command.
  let downSince: number | undefined;
  let lastLoud = 0;
  let failures = 0;
  const noteDown = (error: unknown): void => {
    if (closed) return;
    const now = Date.now();
    failures += 1;
    if (downSince === undefined) downSince = now;
    if (now - lastLoud >= LOUD_EVERY_MS) {
      lastLoud = now;
      log.error(
        { name, redis: redact(opts.url), downForMs: now - downSince, err: errorText(error) },
        'provider limiter: Redis is unreachable; provider calls WAIT until it answers (limits are not relaxed)',
      );
    }
  };
  const noteUp = (): void => {
    if (downSince !== undefined) {
      log.info({ name, downForMs: Date.now() - downSince }, 'provider limiter: Redis answers again');
    }
    downSince = undefined;
    lastLoud = 0;
    failures = 0;
  };
  redis.on('error', noteDown);

  const states = new Map<string, LaneState>();
  let heartbeat: NodeJS.Timeout | undefined;
  const heartbeatMs = Math.max(50, Math.floor(leaseMs / 3));

  const ensureHeartbeat = (): void => {
    if (heartbeat !== undefined || closed) return;
    heartbeat = setInterval(() => void renewAll(), heartbeatMs);
    heartbeat.unref(); // it only renews; the wake timers of waiting calls keep the process alive
  };

  const renewAll = async (): Promise<void> => {
    const cutoff = Date.now() - windowMs - 5_000; // local clock, generous: the script filters by Redis time
    for (const [key, state] of states) {
      let drop = 0;
      while (drop < state.starts.length && (state.starts[drop] as { at: number }).at < cutoff) drop += 1;
      if (drop > 0) state.starts.splice(0, drop);
      if (state.held.size === 0 && state.starts.length === 0) states.delete(key);
    }
    if (states.size === 0) {
      clearInterval(heartbeat);
      heartbeat = undefined;
      return;
    }
    await Promise.all(
      [...states.values()].map(async (state) => {
        const leases = [...state.held];
        const args: (string | number)[] = [leaseMs, windowMs, leases.length, ...leases];
        for (const s of state.starts) args.push(s.at, s.id);
        try {
          await redis.inkwellLimiterRenew(state.sem, state.win, ...args);
          noteUp();
          // A lease released while the renewal was on its way may have been re-added: remove it again.
          const stale = leases.filter((id) => !state.held.has(id));
          if (stale.length > 0 && !closed) await redis.zrem(state.sem, ...stale);
        } catch (error) {
          noteDown(error);
        }
      }),
    );
  };

  return {
    gate(laneKey: string): Gate {
      const tag = laneKey === '*' ? name : `${name}:${laneKey}`;
      const sem = `${base}:{${tag}}:sem`;
      const win = `${base}:{${tag}}:win`;
      const stateFor = (): LaneState => {
        let state = states.get(laneKey);
        if (state === undefined) {
          state = { sem, win, held: new Set(), starts: [] };
          states.set(laneKey, state);
        }
        return state;
      };
      let misses = 0;
      return {
        async tryAcquire(): Promise<Attempt> {
          if (closed) return { ok: false, retryInMs: undefined };
          seq += 1;
          const id = `${token}:${seq}`;
          let reply: [number, number, number];
          try {
            reply = await redis.inkwellLimiterAcquire(sem, win, concurrency, rpm, windowMs, leaseMs, id);
          } catch (error) {
            noteDown(error);
            // It may have run after all (timeout): drop the lease if so; its start stays counted (conservative).
            if (!closed) redis.zrem(sem, id).catch(() => undefined);
            return { ok: false, retryInMs: jitter(Math.min(200 * 2 ** Math.min(failures, 4), 2_000)) };
          }
          noteUp();
          const [ok, value, reason] = reply;
          if (ok !== 1) {
            misses += 1;
            const poll = Math.min(MIN_POLL_MS * 2 ** Math.min(misses - 1, 5), MAX_POLL_MS);
            // Full semaphore: poll (leases are freed by other processes); full window: the hint is exact.
            const wait = reason === 2 ? Math.min(Math.max(value, 1), MAX_HINT_MS) : Math.min(Math.max(value, 1), poll);
            return { ok: false, retryInMs: jitter(wait) };
          }
          misses = 0;
          if (closed) return { ok: false, retryInMs: undefined }; // stopped meanwhile: the lease expires
          const state = stateFor();
          state.held.add(id);
          state.starts.push({ at: value, id });
          ensureHeartbeat();
          return {
            ok: true,
            lease: leaseOnce(() => {
              state.held.delete(id);
              if (closed) return;
              // Frees the slot and counts the start from its latest possible arrival (see limiter.ts); if this
              // fails, the lease expires and the start keeps its original time.
              redis
                .inkwellLimiterRelease(sem, win, id, ARRIVAL_SLACK_MS)
                .then((at) => {
                  const own = state.starts.find((s) => s.id === id);
                  if (own === undefined || at < 0) return;
                  own.at = at;
                  state.starts.sort((a, b) => a.at - b.at);
                })
                .catch(noteDown);
            }),
          };
        },
        idle(): boolean {
          const state = states.get(laneKey);
          return state === undefined || (state.held.size === 0 && state.starts.length === 0);
        },
      };
    },
    reachable: () => redis.status === 'ready',
    async stop(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      heartbeat = undefined;
      states.clear();
      // Held leases are not released: calls still running keep their slots until the leases expire.
      if (redis.status === 'ready') {
        await redis.quit().catch(() => redis.disconnect());
      } else {
        redis.disconnect();
      }
    },
  };
}

/** ±20 %, so processes polling the same key spread out. */
function jitter(ms: number): number {
  return Math.max(1, Math.round(ms * (0.8 + Math.random() * 0.4)));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/g, '//$1:***@');
}
