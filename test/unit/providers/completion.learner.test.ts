import { describe, expect, it } from 'vitest';
import { createCompletionLearner } from '../../../src/providers/completion.learner';

describe('max_completion_tokens learned per stage', () => {
  it('asks for the ceiling until it has seen 5 answers, then 1.5 × the longest + 64 (at least 256)', () => {
    const learner = createCompletionLearner({ ideas: 800, article: 2400 });
    for (const n of [900, 1000, 1100, 1000]) learner.observe('article', n, false);
    expect(learner.limit('article')).toBe(2400);
    learner.observe('article', 1000, false);
    expect(learner.limit('article')).toBe(Math.ceil(1100 * 1.5) + 64);
    expect(learner.limit('ideas')).toBe(800); // stages learn apart
    for (let i = 0; i < 5; i++) learner.observe('ideas', 20, false);
    expect(learner.limit('ideas')).toBe(256);
  });

  it('never above the ceiling, and back to it after an answer cut off at the limit', () => {
    const learner = createCompletionLearner({ article: 2400 });
    for (let i = 0; i < 5; i++) learner.observe('article', 3000, false);
    expect(learner.limit('article')).toBe(2400);
    for (let i = 0; i < 20; i++) learner.observe('article', 500, false);
    expect(learner.limit('article')).toBe(814);
    learner.observe('article', 814, true);
    expect(learner.limit('article')).toBe(2400);
  });
});
