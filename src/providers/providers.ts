/**
 * Chooses the provider adapters from the configuration: real vendors when keyed, the offline ones otherwise;
 * and puts every real provider behind its limiter (per provider; Wix per store), shared through Redis when
 * `REDIS_URL` is set.
 */
import type { Config } from '../config';
import type { Db } from '../db/database';
import { createRefsRepo } from '../db/refs.repo';
import type { Logger } from '../logger';
import { logWaits, waitingForService } from '../runtime/until.reachable';
import type { ImageMaker } from './image.port';
import { createProviderLimiter, type LimiterEvent, type ProviderLimiter } from './limiter';
import { createFilePublisher } from './offline/file.publisher';
import { createOfflineWriter } from './offline/offline.writer';
import { createSvgImageMaker } from './offline/svg.image';
import { createOpenAiWriter } from './openai.writer';
import type { Publisher } from './publisher.port';
import { createReplicateImages } from './replicate.images';
import { createPredictionWaiters, type PredictionWaiters } from './replicate.webhooks';
import type { TextWriter } from './text.port';
import { createWixPublisher } from './wix.publisher';
import { createTokenWindow } from './token.window';

/** The three ports the stage actors call, and the limiters in front of the real ones. */
export interface Providers {
  writer: TextWriter;
  images: ImageMaker;
  publisher: Publisher;
  limiters?: ProviderLimiter[];
  /** With Replicate webhooks on: where `POST /hooks/replicate` delivers verified predictions, and its secret. */
  replicateHooks?: { secret: string; waiters: PredictionWaiters };
  /** What else to close on stop (the token window's Redis connection). */
  closers?: Array<() => Promise<void>>;
  /** Follows limiter events (queue, wait), for metrics; returns the unsubscribe function. */
  onLimiterEvent?: (listener: (e: LimiterEvent, queued: number) => void) => () => void;
}

/** Where real adapters keep the provider references they need to repeat safely, and how writes there are fenced. */
export interface ProviderRefsStore {
  db: Db;
  /**
   * A runtime holds store leases: `epochOf` gives the epoch at which it holds a store (its shards' `epochOf`), and
   * every write is fenced by owner and epoch under the lease row's lock, as blog commits are. `none`: it holds none
   * (the benchmark's polling lifecycle worker), so nothing could pass the fence and writes are not fenced.
   */
  leases: { epochOf: (instanceId: string) => number | undefined } | 'none';
}

/** Builds the providers for `config`; real adapters keep their provider references in `refs`. */
export function createProviders(config: Config, log: Logger, refs?: ProviderRefsStore): Providers {
  const providers: Partial<Providers> & {
    limiters: ProviderLimiter[];
    closers: Array<() => Promise<void>>;
  } = {
    limiters: [],
    closers: [],
  };
  const limiterListeners = new Set<(e: LimiterEvent, queued: number) => void>();
  providers.onLimiterEvent = (listener) => {
    limiterListeners.add(listener);
    return () => limiterListeners.delete(listener);
  };
  const redis = config.REDIS_URL ? { url: config.REDIS_URL, prefix: 'inkwell' } : undefined;
  const limiter = (name: string, concurrency: number, rpm: number, perStore = false) => {
    const created: ProviderLimiter = createProviderLimiter({
      name,
      concurrency,
      rpm,
      perStore,
      ...(redis ? { redis } : {}),
      log,
      onEvent: (e) => limiterListeners.forEach((listener) => listener(e, created.queued())),
    });
    providers.limiters.push(created);
    return (instanceId: string, fn: () => Promise<unknown>) => created.limit(instanceId, fn);
  };
  const needRefs = () => {
    if (!refs) throw new Error('real providers need the database for their provider references');
    // An outage of PostgreSQL makes the stage wait for it, never fail (refs are reads and upserts: safe to repeat).
    const { leases } = refs;
    const fence = leases === 'none' ? undefined : { owner: config.INKWELL_NODE_ID, epochOf: leases.epochOf };
    return waitingForService(createRefsRepo(refs.db, fence), {
      service: 'postgres',
      onWait: logWaits(log, 'postgres'),
    });
  };

  if (config.OPENAI_API_KEY) {
    const limit = limiter('openai', config.INKWELL_OPENAI_CONCURRENCY, config.INKWELL_OPENAI_RPM);
    const tokens = config.INKWELL_OPENAI_TPM
      ? createTokenWindow({ name: 'openai', tpm: config.INKWELL_OPENAI_TPM, ...(redis ? { redis } : {}) })
      : undefined;
    if (tokens) providers.closers.push(() => tokens.stop());
    providers.writer = createOpenAiWriter({
      apiKey: config.OPENAI_API_KEY,
      model: config.OPENAI_MODEL,
      timeoutMs: config.INKWELL_PROVIDER_TIMEOUT_MS,
      ...(config.OPENAI_BASE_URL ? { baseURL: config.OPENAI_BASE_URL } : {}),
      limit: limit as <T>(id: string, fn: () => Promise<T>) => Promise<T>,
      ...(tokens ? { tokens } : {}),
    });
    log.info({ model: config.OPENAI_MODEL, tpm: config.INKWELL_OPENAI_TPM ?? 'unlimited' }, 'text: OpenAI');
  } else {
    log.warn('OPENAI_API_KEY is not set: ideas and articles are written by the local offline writer');
    providers.writer = createOfflineWriter();
  }
  if (config.REPLICATE_WEBHOOK_SECRET) {
    providers.replicateHooks = { secret: config.REPLICATE_WEBHOOK_SECRET, waiters: createPredictionWaiters() };
  }
  const hooks = providers.replicateHooks;
  if (config.REPLICATE_API_TOKEN) {
    const limit = limiter('replicate', config.INKWELL_REPLICATE_CONCURRENCY, config.INKWELL_REPLICATE_RPM);
    providers.images = createReplicateImages({
      token: config.REPLICATE_API_TOKEN,
      model: config.REPLICATE_MODEL,
      refs: needRefs(),
      requestTimeoutMs: config.INKWELL_PROVIDER_TIMEOUT_MS,
      ...(config.REPLICATE_BASE_URL ? { baseUrl: config.REPLICATE_BASE_URL } : {}),
      limit: limit as <T>(id: string, fn: () => Promise<T>) => Promise<T>,
      // With webhooks, polls are a slow fallback for a webhook that never came.
      ...(config.INKWELL_PUBLIC_URL && hooks
        ? {
            webhook: {
              url: `${config.INKWELL_PUBLIC_URL.replace(/\/+$/, '')}/hooks/replicate`,
              waiters: hooks.waiters,
            },
            pollIntervalMs: 30_000,
          }
        : {}),
    });
    log.info({ model: config.REPLICATE_MODEL, webhooks: Boolean(config.INKWELL_PUBLIC_URL) }, 'images: Replicate');
  } else {
    log.warn('REPLICATE_API_TOKEN is not set: header images are rendered locally as SVG');
    providers.images = createSvgImageMaker({ dataDir: config.dataDir });
  }
  if (config.WIX_APP_ID && config.WIX_APP_SECRET) {
    const limit = limiter('wix', config.INKWELL_WIX_CONCURRENCY, config.INKWELL_WIX_RPM, true);
    providers.publisher = createWixPublisher({
      appId: config.WIX_APP_ID,
      appSecret: config.WIX_APP_SECRET,
      baseUrl: config.WIX_BASE_URL,
      refs: needRefs(),
      timeoutMs: config.INKWELL_PROVIDER_TIMEOUT_MS,
      ...(config.WIX_DEFAULT_MEMBER_ID ? { defaultMemberId: config.WIX_DEFAULT_MEMBER_ID } : {}),
      limit: limit as <T>(id: string, fn: () => Promise<T>) => Promise<T>,
    });
    log.info({ baseUrl: config.WIX_BASE_URL }, 'publishing: Wix');
  } else {
    log.warn({ dir: `${config.dataDir}/published` }, 'WIX_APP_ID is not set: posts are written as HTML files');
    providers.publisher = createFilePublisher({ dataDir: config.dataDir });
  }
  if (redis && providers.limiters.length > 0) log.info('provider limits are shared through Redis');
  return providers as Providers;
}
