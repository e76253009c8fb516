/**
 * Tokens per minute (`INKWELL_OPENAI_TPM`): a sliding-window log of token amounts, kept in memory or, with Redis,
 * shared by every process (one sorted set, Redis server time, one Lua script per step).
 *
 * OpenAI counts a request against its tokens-per-minute when the request arrives, by its own estimate (the prompt's
 * characters and the request's `max_tokens`), and answers 429 at once when that does not fit what is left. So before
 * a call we `reserve` at least as much as OpenAI will count (see `estimateTokens` in openai.writer.ts), waiting until
 * it fits in the last 60 s; once the answer is in, we `settle` the entry to the tokens the answer's `usage` reports
 * (kept at the estimate when the call failed without one) and move it to the call's end, the latest moment the
 * provider can have counted it. The provider's window is then never fuller than ours. A call alone larger than the
 * whole budget still runs, alone. `pause` holds new reservations back when the provider's own headers say its
 * window is nearly full (another client on the same key, say): the `x-ratelimit-*-tokens` headers.
 */
import { Redis } from 'ioredis';

/** One reservation: settle it once with the tokens the call really used. */
export interface TokenReservation {
  settle(tokens: number | undefined): Promise<void>;
}

/** The token window's interface. */
export interface TokenWindow {
  /**
   * Waits until `tokens` fit in the window (or `signal` aborts), then holds them. A function is asked again at each
   * try, so a call that waited reserves what it would ask for now.
   */
  reserve(tokens: number | (() => number), signal?: AbortSignal): Promise<TokenReservation>;
  /** No new reservation before `untilMs` from now (the provider said its window is nearly full). */
  pause(forMs: number): void;
  stop(): Promise<void>;
}

/** Checks and takes `tokens` atomically; returns 0 when taken, else how long to wait (ms). */
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, limit, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local sum = 0
for i = 1, #entries, 2 do sum = sum + tonumber(string.match(entries[i], ':(%d+)$')) end
if sum + tokens <= limit or #entries == 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. tokens)
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return 0
end
local need, freed = sum + tokens - limit, 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
  if freed >= need then return math.max(1, tonumber(entries[i + 1]) + window - now + 1) end
end
return window`;

/** Replaces the entry `ARGV[1]:ARGV[2]` by `ARGV[1]:ARGV[3]`, scored now (the call's end). */
const SETTLE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1] .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 2)
return 1`;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });

/** Longest wait between two looks at the window while tokens are short (settles elsewhere free them early). */
const POLL_MS = 250;

let counter = 0;
const newId = () => `${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** Options: `tpm` tokens in any `windowMs` (60 s); with `redis`, shared under `<prefix>:tpm:<name>`. */
export interface TokenWindowOptions {
  name: string;
  tpm: number;
  windowMs?: number;
  redis?: { url: string; prefix?: string };
  now?: () => number;
}

/** Creates the window. */
export function createTokenWindow(opts: TokenWindowOptions): TokenWindow {
  const windowMs = opts.windowMs ?? 60_000;
  const now = opts.now ?? Date.now;
  let pausedUntil = 0;
  const wakers = new Set<() => void>();
  /** Sleeps `ms`, or less when a reservation here settles; rejects when `signal` aborts. Leaves nothing behind. */
  const nap = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const timer = setTimeout(wake, ms);
      function wake() {
        clearTimeout(timer);
        wakers.delete(wake);
        signal?.removeEventListener('abort', abort);
        resolve();
      }
      function abort() {
        clearTimeout(timer);
        wakers.delete(wake);
        reject(signal?.reason as Error);
      }
      wakers.add(wake);
      signal?.addEventListener('abort', abort, { once: true });
    });
  const step = opts.redis
    ? redisSteps(opts.redis, `${opts.redis.prefix ?? 'inkwell'}:tpm:${opts.name}`)
    : memorySteps();

  function memorySteps() {
    const entries = new Map<string, { at: number; tokens: number }>();
    return {
      async tryReserve(id: string, tokens: number): Promise<number> {
        const t = now();
        let sum = 0;
        for (const [key, e] of entries) {
          if (e.at <= t - windowMs) entries.delete(key);
          else sum += e.tokens;
        }
        if (sum + tokens <= opts.tpm || entries.size === 0) {
          entries.set(id, { at: t, tokens });
          return 0;
        }
        let freed = 0;
        for (const e of [...entries.values()].sort((a, b) => a.at - b.at)) {
          freed += e.tokens;
          if (freed >= sum + tokens - opts.tpm) return Math.max(1, e.at + windowMs - t + 1);
        }
        return windowMs;
      },
      async settle(id: string, _old: number, tokens: number): Promise<void> {
        entries.set(id, { at: now(), tokens });
      },
      async stop(): Promise<void> {},
    };
  }

  function redisSteps(conf: { url: string }, key: string) {
    const redis = new Redis(conf.url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false });
    redis.on('error', () => undefined); // outages surface as failed steps, which wait and try again
    return {
      async tryReserve(id: string, tokens: number): Promise<number> {
        return Number(await redis.eval(RESERVE, 1, key, windowMs, opts.tpm, tokens, id));
      },
      async settle(id: string, old: number, tokens: number): Promise<void> {
        await redis.eval(SETTLE, 1, key, id, old, tokens, windowMs);
      },
      async stop(): Promise<void> {
        redis.disconnect();
      },
    };
  }

  return {
    async reserve(tokens, signal) {
      const id = newId();
      let amount = 0;
      for (let failures = 0; ;) {
        amount = Math.max(1, Math.ceil(typeof tokens === 'function' ? tokens() : tokens));
        const paused = pausedUntil - now();
        if (paused > 0) {
          await sleep(paused, signal);
          continue;
        }
        let waitMs: number;
        try {
          waitMs = await step.tryReserve(id, amount);
          failures = 0;
        } catch {
          // Redis unreachable: wait and try again, never run unlimited.
          waitMs = Math.min(2_000, 100 * 2 ** failures++);
        }
        if (waitMs === 0) break;
        // A settle frees tokens long before the entries leave the window: one here wakes us at once, one in
        // another process within POLL_MS.
        await nap(Math.min(waitMs, POLL_MS), signal);
      }
      let settled = false;
      return {
        async settle(used) {
          if (settled) return;
          settled = true;
          await step.settle(id, amount, Math.max(0, Math.ceil(used ?? amount))).catch(() => undefined);
          for (const wake of [...wakers]) wake();
        },
      };
    },
    pause(forMs) {
      pausedUntil = Math.max(pausedUntil, now() + forMs);
    },
    stop: () => step.stop(),
  };
}

/** Milliseconds of an OpenAI reset duration (`6m0s`, `1s`, `250ms`, `1h2m3.5s`); `undefined` when it does not parse. */
export function parseResetDuration(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = '';
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
    matched += m[0];
  }
  return matched === value.trim() ? Math.ceil(total) : undefined;
}
