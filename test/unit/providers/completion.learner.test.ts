import { describe, expect, it } from 'vitest';
import { boundOf, createCompletionLearner } from '../../../src/providers/completion.learner';

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
    // The last 50 answers count: once the long ones are out, equal answers of 500 give 1.1 × 500 + 64.
    for (let i = 0; i < 50; i++) learner.observe('article', 500, false);
    expect(learner.limit('article')).toBe(614);
    learner.observe('article', 614, true);
    expect(learner.limit('article')).toBe(2400);
  });

  it('from 20 answers, the bound follows their spread: 3.5 standard deviations of the log-lengths', () => {
    // Log-lengths ±σ around ln(1000), σ = 0.1 (alternating): the bound is about 1000 × e^(3.5 × 0.1).
    const narrow = Array.from({ length: 20 }, (_, i) => Math.round(1000 * Math.exp(i % 2 ? 0.1 : -0.1)));
    expect(boundOf(narrow)).toBeGreaterThan(1000 * Math.exp(0.35));
    expect(boundOf(narrow)).toBeLessThan(1000 * Math.exp(0.36) + 1);
    // Twice the spread, a bound further out; both under the old 1.5 × the longest.
    const wide = Array.from({ length: 20 }, (_, i) => Math.round(1000 * Math.exp(i % 2 ? 0.2 : -0.2)));
    expect(boundOf(wide)).toBeGreaterThan(1000 * Math.exp(0.7));
    expect(boundOf(narrow)).toBeLessThan(1.5 * Math.max(...narrow));
    // Never under 1.1 × the longest, even with no spread at all.
    expect(boundOf(Array.from({ length: 20 }, () => 1000))).toBe(1100);
    // With fewer than 20, still 1.5 × the longest.
    expect(boundOf(narrow.slice(0, 19))).toBe(1.5 * Math.max(...narrow));
  });
});
