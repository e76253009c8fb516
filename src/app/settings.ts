/** What the runtime reads from the configuration beyond plain values: the blog settings, prices, author rule. */
import type { BlogSettings } from '../../machines/blog.types';
import type { Config } from '../config';
import { pricesFor } from '../runtime/prices';

/** The blog settings a config implies. */
export function settingsOf(config: Config): BlogSettings {
  return {
    maxAttempts: config.INKWELL_MAX_ATTEMPTS,
    retryBaseMs: config.INKWELL_RETRY_BASE_MS,
    selectionTimeoutMs: config.INKWELL_SELECTION_TIMEOUT_MS,
  };
}

/** The prices estimated costs use: the configured ones, else the list prices of the configured models. */
export function pricesOf(config: Config) {
  return pricesFor(config.OPENAI_MODEL, config.REPLICATE_MODEL, {
    inputPerMTok: config.INKWELL_PRICE_INPUT_PER_MTOK,
    outputPerMTok: config.INKWELL_PRICE_OUTPUT_PER_MTOK,
    perImage: config.INKWELL_PRICE_PER_IMAGE,
  });
}

/** With Wix configured and no default post owner, every `create` must name its `authorMemberId`. */
export function needsAuthor(config: Config): boolean {
  return Boolean(config.WIX_APP_ID && config.WIX_APP_SECRET) && !config.WIX_DEFAULT_MEMBER_ID;
}
