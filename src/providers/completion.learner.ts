/**
 * `max_completion_tokens` per stage, learned from recent answers. OpenAI counts it against tokens-per-minute up
 * front, so a needlessly high one wastes the budget (a call reserves it while it runs): after a few answers, a stage
 * asks for 1.5 × the longest of its last 20 answers plus 64 (at least 256), never more than its ceiling. An answer
 * cut off at the limit (`finish_reason: length`) forgets what was learned: the next calls ask for the ceiling again.
 */
const SAMPLES = 20;
const MIN_SAMPLES = 5;
const FLOOR = 256;

/** Creates the learner over the stages' ceilings. */
export function createCompletionLearner<K extends string>(ceilings: Record<K, number>) {
  const recent = new Map<K, number[]>();
  return {
    /** The `max_completion_tokens` to ask for now. */
    limit(stage: K): number {
      const seen = recent.get(stage) ?? [];
      if (seen.length < MIN_SAMPLES) return ceilings[stage];
      return Math.min(ceilings[stage], Math.max(FLOOR, Math.ceil(Math.max(...seen) * 1.5) + 64));
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
