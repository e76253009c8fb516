/**
 * Tokens per minute (`INKWELL_OPENAI_TPM`): a sliding-window log of token amounts, kept in memory or, with Redis,
 * shared by every process (token.window.redis.ts: Redis server time, one Lua script per step).
 *
 * OpenAI counts a request against its tokens-per-minute when the request arrives, by its own estimate (the prompt's
 * characters and the request's `max_completion_tokens`), and answers 429 at once when that does not fit what is left.
 * So before a call we `reserve` at least as much as OpenAI will count (see `estimateTokens` in openai.writer.ts),
 * waiting until it fits in the last 60 s; once the answer is in, we `settle` the entry to the tokens the answer's
 * `usage` reports (kept at the estimate when the call failed without one, dropped after a 429). The settled entry
 * stays counted from the latest moment the request can have reached the provider (`arrivedBy`): the answer's end
 * less the provider's `openai-processing-ms` when it sent one (OpenAI does), else its reservation plus `slackMs` (2 s
 * in a 60 s window, as the provider limiter's ARRIVAL_SLACK_MS) or the call's end when sooner. Counting it from the
 * call's end (as at first) kept every call's tokens a call's duration longer than the provider does; the 2 s slack
 * still keeps them up to 2 s longer, some 3 % of the budget, and is a guess that a request leaving later under load
 * breaks (bench/tokens.bench.ts). A call alone larger than the whole budget still runs, alone.
 *
 * The provider's own view, read from every answer's `x-ratelimit-*-tokens` headers (`settle(tokens, seen)`):
 * - its limit (`-limit-tokens`) caps ours when lower (another tier, a key shared with a smaller budget); until one
 *   answer has told it (at start, or `capMs` after the last answer), one call at a time is let through as a probe;
 * - what it counted beyond our own tokens (another client on the same key) is held in our window as one entry,
 *   replaced at every answer and dropped a window after the last, so we slow down as soon as the provider is fuller
 *   than we are, not only after a 429 or when it is all but empty. Ours is taken generously (every entry of ours
 *   in the window when the call reserved, and every one since, kept for a second window to be counted): the
 *   provider counted at most those, so tokens of ours that crossed this call on the way are not mistaken for
 *   another client's; and two answers in a row must say so;
 * - after a 429 for tokens, `pause` holds every reservation back (openai.writer.ts says for how long).
 * With Redis all three are shared by every process, like the entries.
 */
import { ARRIVAL_SLACK_MS } from './limiter.port';
import { FOREIGN_NOISE, type TokenWindow, type WindowSteps } from './token.window.port';
import { redisSteps } from './token.window.redis';

export type { ProviderTokens, TokenReservation, TokenWindow } from './token.window.port';

/** Longest wait between two looks at the window while tokens are short (settles elsewhere free them early). */
const POLL_MS = 250;
/** How long a probe (the one call while the provider's limit is unknown) holds the way, at most. */
const PROBE_MS = 30_000;
/** How long the provider's limit, once told, is trusted without a new answer. */
const CAP_MS = 600_000;

let counter = 0;
const newId = () => `${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** Options: `tpm` tokens in any `windowMs` (60 s); with `redis`, shared under `<prefix>:tpm:{<name>}`. */
export interface TokenWindowOptions {
  name: string;
  tpm: number;
  windowMs?: number;
  /** How long after its reservation a call's request surely reached the provider; ARRIVAL_SLACK_MS (2 s). */
  slackMs?: number;
  redis?: { url: string; prefix?: string };
  now?: () => number;
}

/**
 * The latest moment a settled call's request can have reached the provider. With the provider's
 * `openai-processing-ms`: the answer's end less that time (the request arrived at least that long before the answer
 * was back), never before the reservation: a bound, not a guess, also when the request left late. Without it: the
 * reservation plus the slack, or the end when sooner.
 */
export function arrivedBy(reservedAt: number, now: number, slackMs: number, processingMs?: number): number {
  if (processingMs !== undefined) return Math.max(reservedAt, now - processingMs);
  return Math.min(now, reservedAt + slackMs);
}

/** In-memory steps: the same rules as the Redis scripts, for one process. */
function memorySteps(o: { tpm: number; windowMs: number; slackMs: number; now: () => number }): WindowSteps {
  const entries = new Map<string, { at: number; tokens: number }>();
  let cap: { value: number; until: number } | undefined;
  let foreign = { tokens: 0, until: 0 };
  let lastOther = { tokens: 0, until: 0 };
  let probe: { id: string; until: number } | undefined;
  let pausedUntil = 0;
  return {
    async tryReserve(id, tokens) {
      const t = o.now();
      if (pausedUntil > t) return { ok: false, waitMs: pausedUntil - t };
      if (cap && cap.until <= t) cap = undefined;
      if (probe && probe.until <= t) probe = undefined;
      const limit = cap && cap.value > 0 ? Math.min(o.tpm, cap.value) : o.tpm;
      const other = foreign.until > t ? foreign.tokens : 0;
      let sum = 0;
      let count = 0; // entries kept for two windows (see settle), counted for one
      for (const [key, e] of entries) {
        if (e.at <= t - 2 * o.windowMs) entries.delete(key);
        else if (e.at > t - o.windowMs) [sum, count] = [sum + e.tokens, count + 1];
      }
      if (sum + other + tokens <= limit || (count === 0 && other === 0)) {
        if (!cap) {
          if (probe) return { ok: false, waitMs: Math.min(POLL_MS, probe.until - t) };
          probe = { id, until: t + PROBE_MS };
        }
        entries.set(id, { at: t, tokens });
        return { ok: true };
      }
      const hint = other > 0 ? foreign.until - t : o.windowMs;
      let freed = 0;
      const inWindow = [...entries.values()].filter((e) => e.at > t - o.windowMs);
      for (const e of inWindow.sort((a, b) => a.at - b.at)) {
        freed += e.tokens;
        if (freed >= sum + other + tokens - limit) {
          return { ok: false, waitMs: Math.min(hint, Math.max(1, e.at + o.windowMs - t + 1)) };
        }
      }
      return { ok: false, waitMs: hint };
    },
    async settle(id, _old, tokens, seen) {
      const t = o.now();
      const entry = entries.get(id);
      let own = 0;
      if (entry) for (const e of entries.values()) if (e.at > entry.at - o.windowMs) own += e.tokens;
      entries.delete(id);
      const at = entry ? arrivedBy(entry.at, t, o.slackMs, seen?.processingMs) : t;
      if (tokens > 0) entries.set(id, { at, tokens });
      if (probe?.id === id) probe = undefined;
      if (seen?.limit !== undefined) {
        cap = { value: seen.limit, until: t + CAP_MS };
        if (seen.remaining !== undefined && entry) {
          const other = seen.limit - seen.remaining - own;
          // Two answers in a row must say so (one alone may just have crossed ours), but the first answer in a
          // window is believed: nothing of ours was there to cross it.
          const seenTwice = lastOther.until > t ? Math.min(other, lastOther.tokens) : other;
          lastOther = { tokens: other, until: t + o.windowMs };
          const real = seenTwice > seen.limit * FOREIGN_NOISE;
          foreign = real ? { tokens: seenTwice, until: t + o.windowMs } : { tokens: 0, until: 0 };
        }
      } else if (seen === null) cap = { value: -1, until: t + CAP_MS };
    },
    async pause(ms) {
      pausedUntil = Math.max(pausedUntil, o.now() + ms);
    },
    async stop() {},
  };
}

/** Creates the window. */
export function createTokenWindow(opts: TokenWindowOptions): TokenWindow {
  const windowMs = opts.windowMs ?? 60_000;
  const slackMs = opts.slackMs ?? ARRIVAL_SLACK_MS;
  const now = opts.now ?? Date.now;
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
    ? redisSteps(opts.redis, { name: opts.name, tpm: opts.tpm, windowMs, slackMs, probeMs: PROBE_MS, capMs: CAP_MS })
    : memorySteps({ tpm: opts.tpm, windowMs, slackMs, now });

  return {
    async reserve(tokens, signal) {
      const id = newId();
      let amount = 0;
      for (let failures = 0; ;) {
        amount = Math.max(1, Math.ceil(typeof tokens === 'function' ? tokens() : tokens));
        let waitMs: number;
        try {
          const got = await step.tryReserve(id, amount);
          failures = 0;
          if (got.ok) break;
          waitMs = got.waitMs;
        } catch {
          // Redis unreachable: wait and try again, never run unlimited.
          waitMs = Math.min(2_000, 100 * 2 ** failures++);
        }
        // A settle frees tokens long before the entries leave the window: one here wakes us at once, one in
        // another process within POLL_MS.
        await nap(Math.min(waitMs, POLL_MS), signal);
      }
      let settled = false;
      return {
        async settle(used, seen) {
          if (settled) return;
          settled = true;
          const tokensUsed = Math.max(0, Math.ceil(used ?? amount));
          await step.settle(id, amount, tokensUsed, seen).catch(() => undefined);
          for (const wake of [...wakers]) wake();
        },
      };
    },
    async pause(forMs) {
      await step.pause(forMs).catch(() => undefined);
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
