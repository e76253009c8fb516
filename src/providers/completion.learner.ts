/**
 * `max_completion_tokens` per stage, learned from recent answers. OpenAI counts it against tokens-per-minute up
 * front, so a needlessly high one wastes the budget (a call in flight holds it: with answers taking a quarter of the
 * window, no client can use more than 1 ÷ (1 + 0.25 × (k − 1)) of the budget, k being the up-front count ÷ the final
 * cost; bench/tokens.bench.ts). A bound too low cuts answers off (`finish_reason: length`), each a paid retry. So the
 * bound follows how the stage's answers are spread, not only their longest:
 * - until 5 answers: the stage's ceiling;
 * - from 5 to 19: 1.5 × the longest + 64 (too few answers to tell their spread);
 * - from 20 (the last 50 kept): the answers' log-normal fit (mean and standard deviation of their logarithms) at
 *   Z = 3.5 standard deviations above the typical answer (one answer in about 4,300 longer, were lengths
 *   log-normal), and never under 1.1 × the longest seen, + 64. Narrowly spread answers thus get a close bound, widely
 *   spread ones a generous one, whatever their length;
 * - at least 256, never above the ceiling; an answer cut off at the limit forgets what was learned: the next calls
 *   ask for the ceiling again and learn anew.
 */
const SAMPLES = 50;
const MIN_SAMPLES = 5;
const SPREAD_SAMPLES = 20;
const FLOOR = 256;
/** Standard deviations (of the answers' log-lengths) above the typical answer. */
const Z = 3.5;

/** The bound (before the +64 and the floor and ceiling) for these recent answers; `seen` has ≥ 1 answer. */
export function boundOf(seen: readonly number[]): number {
  const longest = Math.max(...seen);
  if (seen.length < SPREAD_SAMPLES) return 1.5 * longest;
  const logs = seen.map((n) => Math.log(Math.max(1, n)));
  const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
  const sd = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / (logs.length - 1));
  return Math.max(1.1 * longest, Math.exp(mean + Z * sd));
}

/** Creates the learner over the stages' ceilings. */
export function createCompletionLearner<K extends string>(ceilings: Record<K, number>) {
  const recent = new Map<K, number[]>();
  return {
    /** The `max_completion_tokens` to ask for now. */
    limit(stage: K): number {
      const seen = recent.get(stage) ?? [];
      if (seen.length < MIN_SAMPLES) return ceilings[stage];
      return Math.min(ceilings[stage], Math.max(FLOOR, Math.ceil(boundOf(seen)) + 64));
    },
    /** Records an answer: its `completion_tokens`, and whether it was cut off at the limit. */
    observe(stage: K, completionTokens: number | undefined, cutOff: boolean): void {
      if (cutOff) return void recent.delete(stage);
      if (completionTokens === undefined) return;
      const seen = recent.get(stage) ?? [];
      seen.push(completionTokens);
      if (seen.length > SAMPLES) seen.shift();
      recent.set(stage, seen);
    },
  };
}
