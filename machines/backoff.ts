/** Longest wait between two attempts, whatever the attempt number. */
export const MAX_BACKOFF_MS = 5 * 60_000;

/** A stable number in [0, 1) from a string: jitter that replays the same after a restore. */
export function hashUnit(seed: string): number {
  let h = 2166136261;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) / 4294967296;
}

/**
 * Wait before attempt `attempt + 1`: exponential from `baseMs`, with "equal jitter"
 * (half fixed, half spread) so that many blogs failing together do not retry together.
 * A provider's `Retry-After` is a floor.
 */
export function backoffDelay(attempt: number, baseMs: number, seed: string, retryAfterMs = 0): number {
  const exp = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = exp / 2 + (exp / 2) * hashUnit(`${seed}:${attempt}`);
  return Math.max(Math.round(jittered), retryAfterMs);
}
