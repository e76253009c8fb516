/** The latency scenario's blogs (who, when, from a topic or an idea) and their ideals; pure and deterministic. */
import { createRandom, hashString } from '../../src/providers/offline/seed';
import { LIMITER_OF, LIMITS, selectionDelay, stageTime, WINDOW_MS, type LimiterName, type Stage } from './sim';

/** One blog of the workload. */
export interface BlogSpec {
  blogId: string;
  instanceId: string;
  /** A topic needs ideas and the owner's pick; an idea goes straight to the article. */
  kind: 'topic' | 'idea';
  /** When it arrives, in ms after the run starts. */
  arrivalMs: number;
}

/** `blogs` blogs over `stores` stores arriving uniformly at random over `windowMs`, every other one a topic. */
export function makeWorkload(seed: string, blogs: number, stores: number, windowMs: number): BlogSpec[] {
  const random = createRandom(hashString(`${seed}:arrivals`));
  const arrivals = Array.from({ length: blogs }, () => Math.round(random() * windowMs)).sort((a, b) => a - b);
  return arrivals.map((arrivalMs, i) => ({
    blogId: `${seed}-b${i}`,
    instanceId: `store-${i % stores}`,
    kind: i % 2 === 0 ? 'topic' : 'idea',
    arrivalMs,
  }));
}

/** The stages a blog goes through. */
export function stagesOf(spec: BlogSpec): Stage[] {
  return spec.kind === 'topic' ? ['ideas', 'article', 'image', 'publish'] : ['article', 'image', 'publish'];
}

/** A blog's ideal latency: the sum of its stage times, plus the owner's think time for a topic. */
export function idealOf(seed: string, spec: BlogSpec): number {
  const work = stagesOf(spec).reduce((sum, s) => sum + stageTime(seed, spec.blogId, s), 0);
  return work + (spec.kind === 'topic' ? selectionDelay(seed, spec.blogId) : 0);
}

/**
 * The shortest time the limits allow for all the work: for each limiter (Wix: each store), the larger of its
 * busy time ÷ concurrency and the windows its call count needs at its rpm; the largest over limiters.
 */
export function rateLimitBound(seed: string, specs: BlogSpec[]): number {
  const lanes = new Map<string, { limiter: LimiterName; busyMs: number; calls: number }>();
  for (const spec of specs) {
    for (const stage of stagesOf(spec)) {
      const limiter = LIMITER_OF[stage];
      const key = LIMITS[limiter].perStore ? `${limiter}:${spec.instanceId}` : limiter;
      const lane = lanes.get(key) ?? { limiter, busyMs: 0, calls: 0 };
      lane.busyMs += stageTime(seed, spec.blogId, stage);
      lane.calls += 1;
      lanes.set(key, lane);
    }
  }
  let bound = 0;
  for (const lane of lanes.values()) {
    const { concurrency, rpm } = LIMITS[lane.limiter];
    const byRate = (Math.ceil(lane.calls / rpm) - 1) * WINDOW_MS;
    bound = Math.max(bound, lane.busyMs / concurrency, byRate);
  }
  return bound;
}

/** The ideal makespan: no sooner than the last blog's arrival plus its ideal, nor than the rate-limit bound. */
export function idealMakespan(seed: string, specs: BlogSpec[]): number {
  const byBlogs = Math.max(...specs.map((s) => s.arrivalMs + idealOf(seed, s)));
  return Math.max(byBlogs, rateLimitBound(seed, specs));
}
