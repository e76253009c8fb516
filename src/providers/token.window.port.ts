/** The token window's port (token.window.ts) and the steps its two stores implement. */

/** What the provider's `x-ratelimit-*-tokens` headers said on one answer. */
export interface ProviderTokens {
  /** `x-ratelimit-limit-tokens`: the provider's own tokens per minute. */
  limit?: number;
  /** `x-ratelimit-remaining-tokens`: what it had left when the request arrived, the request counted. */
  remaining?: number;
  /**
   * `openai-processing-ms`: how long the provider worked on the request, so it arrived at least this long before
   * the answer came back (a settled entry then counts from no later than that; token.window.ts).
   */
  processingMs?: number;
}

/** One reservation: settle it once with the tokens the call really used and what the provider said. */
export interface TokenReservation {
  /**
   * `tokens`: the answer's `usage` (undefined: keep the estimate; 0: not counted, after a 429). `seen`: the
   * answer's headers; `null` when it answered without them; undefined when there was no answer.
   */
  settle(tokens: number | undefined, seen?: ProviderTokens | null): Promise<void>;
}

/** The token window's interface. */
export interface TokenWindow {
  /**
   * Waits until `tokens` fit in the window (or `signal` aborts), then holds them. A function is asked again at each
   * try, so a call that waited reserves what it would ask for now.
   */
  reserve(tokens: number | (() => number), signal?: AbortSignal): Promise<TokenReservation>;
  /** No new reservation for `forMs` from now, in every process sharing the window (after a 429 for tokens). */
  pause(forMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The window's steps, in memory or in Redis (token.window.redis.ts). */
export interface WindowSteps {
  /** Takes `tokens` when they fit; else says how long to wait. */
  tryReserve(id: string, tokens: number): Promise<{ ok: true } | { ok: false; waitMs: number }>;
  /** `seen`: the provider's headers; `null`: it answered without them; undefined: no answer. */
  settle(id: string, old: number, tokens: number, seen?: ProviderTokens | null): Promise<void>;
  pause(ms: number): Promise<void>;
  stop(): Promise<void>;
}

/** Tokens beyond ours under this share of the limit are noise (calls crossing on the way), not another client. */
export const FOREIGN_NOISE = 0.02;
