/**
 * Limiter events reach whoever follows them through `onLimiterEvent` (the runtime, for metrics), without anybody
 * writing into the providers object: it can be frozen.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config';
import { createLogger } from '../../../src/logger';
import type { LimiterEvent } from '../../../src/providers/limiter';
import { createProviders } from '../../../src/providers/providers';

describe('providers: limiter events', () => {
  it('are delivered to every follower until it unfollows, with the providers frozen', async () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: 'http://127.0.0.1:9', REDIS_URL: '' });
    const providers = Object.freeze(createProviders(config, createLogger('silent', 'test')));
    const seen: Array<[string, string]> = [];
    const other: string[] = [];
    const unfollow = providers.onLimiterEvent!((e: LimiterEvent) => seen.push([e.name, e.kind]));
    providers.onLimiterEvent!((e: LimiterEvent) => other.push(e.kind));
    expect(providers.limiters).toHaveLength(1); // OpenAI's only: no Replicate nor Wix configured
    const [openai] = providers.limiters!;
    await openai!.limit('store-1', async () => 'ok');
    expect(seen.map(([name]) => name)).toContain('openai');
    expect(seen.map(([, kind]) => kind)).toContain('started');
    const before = seen.length;
    unfollow();
    await openai!.limit('store-1', async () => 'ok');
    expect(seen).toHaveLength(before);
    expect(other.length).toBeGreaterThan(before);
    await Promise.all(providers.limiters!.map((l) => l.stop()));
  });
});
