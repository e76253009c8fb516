/**
 * Estimated cost in dollars of what was spent, from a price table: list prices of the default models (per million
 * tokens, per image), each overridable in the configuration. An unknown model without a price gives no estimate.
 */
import type { Usage } from '../../machines/blog.types';

/** Dollars per million input / output tokens of a text model. */
const TEXT_PRICES: Record<string, { input: number; output: number }> = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'gpt-4.1': { input: 2, output: 8 },
};

/** Dollars per image of an image model. */
const IMAGE_PRICES: Record<string, number> = {
  'black-forest-labs/flux-schnell': 0.003,
  'black-forest-labs/flux-dev': 0.025,
  'black-forest-labs/flux-1.1-pro': 0.04,
};

/** The prices in force; `undefined` where neither the configuration nor the table knows one. */
export interface Prices {
  inputPerMTok?: number;
  outputPerMTok?: number;
  perImage?: number;
}

/** The prices for the configured models, configured overrides first. */
export function pricesFor(
  textModel: string,
  imageModel: string,
  overrides: { inputPerMTok?: number | undefined; outputPerMTok?: number | undefined; perImage?: number | undefined },
): Prices {
  const text = TEXT_PRICES[textModel];
  const image = IMAGE_PRICES[imageModel];
  const pick = (a: number | undefined, b: number | undefined) => a ?? b;
  const inputPerMTok = pick(overrides.inputPerMTok, text?.input);
  const outputPerMTok = pick(overrides.outputPerMTok, text?.output);
  const perImage = pick(overrides.perImage, image);
  return {
    ...(inputPerMTok !== undefined ? { inputPerMTok } : {}),
    ...(outputPerMTok !== undefined ? { outputPerMTok } : {}),
    ...(perImage !== undefined ? { perImage } : {}),
  };
}

/** Dollars for `usage` at `prices`, rounded to 1/10000 of a cent; `null` when a price that is needed is missing. */
export function estimateCost(usage: Usage, prices: Prices): number | null {
  const part = (n: number, price: number | undefined, per: number) =>
    n === 0 ? 0 : price === undefined ? Number.NaN : (n * price) / per;
  const total =
    part(usage.inputTokens, prices.inputPerMTok, 1e6) +
    part(usage.outputTokens, prices.outputPerMTok, 1e6) +
    part(usage.images, prices.perImage, 1);
  return Number.isNaN(total) ? null : Math.round(total * 1e6) / 1e6;
}
