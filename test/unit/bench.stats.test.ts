import { describe, expect, it } from 'vitest';
import { median, medianSummary, quantile, ratio, round, summarize } from '../../bench/lib/stats';

describe('bench stats', () => {
  it('interpolates quantiles between closest ranks, whatever the input order', () => {
    expect(quantile([4, 1, 3, 2], 0)).toBe(1);
    expect(quantile([4, 1, 3, 2], 1)).toBe(4);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10, 20], 0.95)).toBeCloseTo(19.5);
  });

  it('gives NaN for an empty sample and refuses a quantile outside [0, 1]', () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
  });

  it('takes the median of odd and even samples', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([1, 2, 3, 4])).toBe(2.5);
  });

  it('summarizes and takes field-wise medians of repeated runs', () => {
    const s = summarize([1, 2, 3, 4, 5]);
    expect(s).toMatchObject({ n: 5, p50: 3, max: 5 });
    const m = medianSummary([summarize([1, 1, 1]), summarize([2, 2, 2]), summarize([9, 9, 9])]);
    expect(m).toMatchObject({ n: 3, p50: 2, p95: 2, max: 2 });
  });

  it('gives NaN for a ratio to zero and rounds to the given digits', () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(1, 0)).toBeNaN();
    expect(round(1.23456, 2)).toBe(1.23);
    expect(round(NaN, 2)).toBeNaN();
  });
});
