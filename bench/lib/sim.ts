/**
 * Simulated providers shared by every system the latency scenario drives (Inkwell and both baselines): the old
 * system's stage times divided by SCALE with ±50 % jitter, as `withLatency(legacyLatency(100))` does, except that
 * each blog's jitter is a hash of (seed, blogId, stage), so all three systems see exactly the same stage times in
 * a run and the ideal of every blog is known. Calls go through the real limiter (src/providers/limiter.ts) with
 * the same limits for everyone; the 60 s window is scaled down like the stage times.
 */
import type { Article, HeaderImage, Idea, PublishedPost } from '../../machines/blog.types';
import { createProviderLimiter, type ProviderLimiter } from '../../src/providers/limiter';
import { legacyLatency } from '../../src/providers/latency';
import { createRandom, hashString, sleep } from '../../src/providers/offline/seed';
import type { Providers } from '../../src/providers/providers';

/** Real time ÷ SCALE: the stage times and the rate-limit window. */
export const SCALE = 100;
/** Mean stage times in ms: ideas 50, article 300, image 100, publish 70. */
export const STAGE_MS = legacyLatency(SCALE);
export type Stage = keyof typeof STAGE_MS;
export const WINDOW_MS = 60_000 / SCALE;

/**
 * The limits every system gets: OpenAI 500 requests/min (tier-1 gpt-4o-mini) and 16 in flight; Replicate 600
 * predictions/min and 8 in flight; Wix about 200 requests/min per site (docs/dependencies.md) and 4 in flight per store.
 */
export const LIMITS = {
  openai: { concurrency: 16, rpm: 500, perStore: false },
  replicate: { concurrency: 8, rpm: 600, perStore: false },
  wix: { concurrency: 4, rpm: 200, perStore: true },
} as const;
export type LimiterName = keyof typeof LIMITS;
export const LIMITER_OF: Record<Stage, LimiterName> = {
  ideas: 'openai',
  article: 'openai',
  image: 'replicate',
  publish: 'wix',
};

/** The jittered time of one stage of one blog in a run: mean × [0.5, 1.5). */
export function stageTime(seed: string, blogId: string, stage: Stage): number {
  const u = createRandom(hashString(`${seed}:${blogId}:${stage}`))();
  return Math.round(STAGE_MS[stage] * (0.5 + u));
}

/** The store owner's think time before picking an idea: 100–300 ms (10–30 s before scaling). */
export function selectionDelay(seed: string, blogId: string): number {
  const u = createRandom(hashString(`${seed}:${blogId}:select`))();
  return Math.round(100 + 200 * u);
}

const IDEAS: Idea[] = [
  { title: 'Ten ways to brew better coffee', summary: 'From grind to water temperature.' },
  { title: 'Cold brew at home', summary: 'A slow, forgiving method.' },
  { title: 'Choosing beans', summary: 'Origins, roasts and freshness.' },
];
const ARTICLE: Article = {
  title: 'Ten ways to brew better coffee',
  excerpt: 'From grind to water temperature.',
  markdown: '# Ten ways\n\nGrind fresh.',
  html: '<h1>Ten ways</h1><p>Grind fresh.</p>',
};
const IMAGE: HeaderImage = { url: 'https://example.invalid/header.png', alt: 'A cup of coffee' };

/** Providers that answer at once with fixed content (the throughput scenario: persistence-bound). */
export function createInstantProviders(): Providers {
  return {
    writer: {
      name: 'instant',
      generateIdeas: () => Promise.resolve(IDEAS.map((i) => ({ ...i }))),
      generateArticle: () => Promise.resolve({ ...ARTICLE }),
    },
    images: { name: 'instant', createHeaderImage: () => Promise.resolve({ ...IMAGE }) },
    publisher: {
      name: 'instant',
      publish: (call): Promise<PublishedPost> => Promise.resolve({ id: `post-${call.blogId}` }),
    },
  };
}

/** One limiter per provider with LIMITS and the scaled window. */
export function createLimiters(): Record<LimiterName, ProviderLimiter> {
  const make = (name: LimiterName) =>
    createProviderLimiter({ name, ...LIMITS[name], windowMs: WINDOW_MS, log: { info() {}, warn() {}, error() {} } });
  return { openai: make('openai'), replicate: make('replicate'), wix: make('wix') };
}

/**
 * The instant providers behind `limiters`, each call first sleeping its blog's stage time (times `slower`: 1 for
 * the scaled-down scenarios, SCALE for the real stage times).
 */
export function createSimulatedProviders(
  seed: string,
  limiters: Record<LimiterName, ProviderLimiter>,
  slower = 1,
): Providers {
  const instant = createInstantProviders();
  const call = <T>(
    stage: Stage,
    c: { blogId: string; instanceId: string; signal: AbortSignal },
    fn: () => Promise<T>,
  ) =>
    limiters[LIMITER_OF[stage]].limit(c.instanceId, async () => {
      await sleep(stageTime(seed, c.blogId, stage) * slower, c.signal);
      return fn();
    });
  return {
    writer: {
      name: 'simulated',
      generateIdeas: (c) => call('ideas', c, () => instant.writer.generateIdeas(c)),
      generateArticle: (c) => call('article', c, () => instant.writer.generateArticle(c)),
    },
    images: {
      name: 'simulated',
      createHeaderImage: (c) => call('image', c, () => instant.images.createHeaderImage(c)),
    },
    publisher: { name: 'simulated', publish: (c) => call('publish', c, () => instant.publisher.publish(c)) },
    limiters: Object.values(limiters),
  };
}
