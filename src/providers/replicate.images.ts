/*
 * Replicate header images, over the predictions HTTP API with undici's `request`. The `replicate` 1.4 SDK is not used:
 * its request loop repeats a POST after any thrown error (a dropped connection creates duplicate paid predictions),
 * repeats 429s without waiting for Retry-After, and `run()` neither polls nor ends on `aborted`. Here the create is
 * made once per attempt (the blog machine retries), its id is stored at once, and we poll it ourselves until a
 * deadline; a repeated attempt, even after a restart, polls the stored prediction instead of paying for another.
 */
import { request } from 'undici';
import type { HeaderImage } from '../../machines/blog.types';
import { StageFailureError } from '../errors';
import type { ImageCall, ImageMaker } from './image.port';
import { clip } from './offline/offline.templates';
import { abortedFailure, sleep } from './offline/seed';
import type { ProviderLimit } from './openai.writer';
import { isTimeout, parseRetryAfter, toHeaders, withTimeout } from './undici.fetch';
import type { ProviderRefs } from '../db/refs.port';
import type { PredictionWaiters } from './replicate.webhooks';

/** Options of the Replicate image maker; `model` is `owner/name` or `owner/name:version`. */
export interface ReplicateImagesOptions {
  token: string;
  /** API root including `/v1`; default `https://api.replicate.com/v1`. */
  baseUrl?: string;
  model: string;
  refs: ProviderRefs;
  pollIntervalMs?: number;
  /** How long one attempt waits for the prediction before failing retryably (the prediction is kept). */
  deadlineMs?: number;
  /** `Prefer: wait=<n>` on the create (1–60); 0 sends no Prefer header. */
  waitSeconds?: number;
  /** Time allowed for one HTTP exchange (a create gets `waitSeconds` on top); default 30 s. */
  requestTimeoutMs?: number;
  limit?: ProviderLimit;
  /** Webhooks: predictions are created with this `url`, and a finished one delivered to `waiters` ends the wait. */
  webhook?: { url: string; waiters: PredictionWaiters };
}

/** The ref key under which a blog's prediction id is kept; an empty value means none. */
export const PREDICTION_REF = 'replicate.prediction';

const STYLE = 'editorial blog header photograph, wide composition, natural light, high detail, no text, no watermark';
const TERMINAL_FAILURES = new Set(['failed', 'canceled', 'aborted']);
// Replicate deletes API prediction outputs after about an hour: an older success cannot be reused.
const OUTPUT_TTL_MS = 50 * 60_000;

interface Prediction {
  id: string;
  status: string;
  output?: unknown;
  error?: unknown;
  completed_at?: string | null;
}

/** The first URL in a prediction's output (a string, or a list whose first item is one). */
function outputUrl(output: unknown): string | undefined {
  const first: unknown = Array.isArray(output) ? output[0] : output;
  return typeof first === 'string' && /^https?:\/\//.test(first) ? first : undefined;
}

/** Replicate's `error` of a failed prediction, as text. */
function reasonOf(error: unknown): string {
  if (error === null || error === undefined || error === '') return 'no reason given';
  return typeof error === 'string' ? error : JSON.stringify(error);
}

/** One HTTP answer, its body read whole. */
interface Reply {
  status: number;
  ok: boolean;
  headers: Headers;
  text: string;
  json(): unknown;
}

/** Maps a failed HTTP response to a `StageFailureError`. */
function httpFailure(response: Reply, what: string): StageFailureError {
  const body = response.text;
  const detail = clip(/"detail"\s*:\s*"([^"]*)"/.exec(body)?.[1] ?? body, 300);
  const message = `Replicate ${what}: HTTP ${response.status}${detail ? ` ${detail}` : ''}`;
  const { status } = response;
  if (status === 429) return new StageFailureError('RATE_LIMITED', message, true, parseRetryAfter(response.headers));
  if (status >= 500 || status === 408) {
    return new StageFailureError('REPLICATE_UNAVAILABLE', message, true, parseRetryAfter(response.headers));
  }
  if (status === 401 || status === 403) return new StageFailureError('REPLICATE_AUTH', message, false);
  if (status === 402) return new StageFailureError('REPLICATE_PAYMENT_REQUIRED', message, false);
  if (status === 404) return new StageFailureError('REPLICATE_NOT_FOUND', message, false);
  if (status === 422) return new StageFailureError('REPLICATE_INVALID_INPUT', message, false);
  return new StageFailureError('REPLICATE_BAD_REQUEST', message, false);
}

/** An image maker over Replicate predictions; safe to call again for the same blog, also from a new process. */
export function createReplicateImages(opts: ReplicateImagesOptions): ImageMaker {
  const base = (opts.baseUrl ?? 'https://api.replicate.com/v1').replace(/\/+$/, '');
  const pollIntervalMs = opts.pollIntervalMs ?? 1000;
  const deadlineMs = opts.deadlineMs ?? 180_000;
  const waitSeconds = Math.min(60, Math.max(0, Math.round(opts.waitSeconds ?? 5)));
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  const limit: ProviderLimit = opts.limit ?? ((_, fn) => fn());
  const [modelName, version] = opts.model.split(':');
  const webhookFields = opts.webhook ? { webhook: opts.webhook.url, webhook_events_filter: ['completed'] } : {};
  if (!/^[\w.-]+\/[\w.-]+$/.test(modelName ?? '')) {
    throw new Error(`Replicate model must be "owner/name" or "owner/name:version", got "${opts.model}"`);
  }

  /**
   * One HTTP exchange, never repeated here; network errors and timeouts are retryable failures. undici's `request`,
   * not `fetch` (as in the Wix client): the same client without the WHATWG layers, and the body is read within the
   * same timeout.
   */
  async function send(
    path: string,
    signal: AbortSignal,
    init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string } = {},
    timeoutMs = requestTimeoutMs,
  ): Promise<Reply> {
    if (signal.aborted) throw abortedFailure(signal);
    try {
      return await withTimeout(signal, timeoutMs, async (linked) => {
        const res = await request(`${base}${path}`, {
          method: init.method ?? 'GET',
          headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json', ...init.headers },
          ...(init.body !== undefined ? { body: init.body } : {}),
          signal: linked,
        });
        const status = res.statusCode;
        const ok = status >= 200 && status < 300;
        // A failed answer whose body cannot be read is still judged by its status, as with `fetch` before.
        const text = ok ? await res.body.text() : await res.body.text().catch(() => '');
        return {
          status,
          ok,
          get headers() {
            return toHeaders(res.headers);
          },
          text,
          json: () => JSON.parse(text) as unknown,
        };
      });
    } catch (error) {
      if (signal.aborted) throw abortedFailure(signal);
      const reason = error instanceof Error ? error.message : String(error);
      const code = isTimeout(error) ? 'REPLICATE_TIMEOUT' : 'REPLICATE_UNAVAILABLE';
      throw new StageFailureError(code, `Replicate: ${reason}`, true, undefined, { cause: error });
    }
  }

  async function create(call: ImageCall): Promise<Prediction> {
    const { title, excerpt } = call.article;
    const input = { prompt: `${clip(title, 200)}. ${clip(excerpt, 300)} — ${STYLE}`, aspect_ratio: '16:9' };
    const path = version ? '/predictions' : `/models/${modelName}/predictions`;
    const response = await limit(call.instanceId, () =>
      send(
        path,
        call.signal,
        {
          method: 'POST',
          headers: waitSeconds > 0 ? { Prefer: `wait=${waitSeconds}` } : {},
          body: JSON.stringify({ ...(version ? { version } : {}), input, ...webhookFields }),
        },
        requestTimeoutMs + waitSeconds * 1000,
      ),
    );
    if (!response.ok) throw httpFailure(response, 'create');
    const prediction = response.json() as Prediction;
    if (typeof prediction.id !== 'string' || !prediction.id) {
      throw new StageFailureError('BAD_OUTPUT', 'Replicate: the created prediction has no id', true);
    }
    // Each prediction created is one image paid for, whatever becomes of it; a resumed one is not counted again.
    call.onUsage?.({ images: 1 });
    await opts.refs.put(call, PREDICTION_REF, prediction.id);
    return prediction;
  }

  /** The prediction now, or `undefined` when Replicate no longer knows it; transient errors throw retryably. */
  async function fetchPrediction(id: string, signal: AbortSignal, deadline: number): Promise<Prediction | undefined> {
    // A hanging poll must not hold the attempt long past its deadline.
    const timeoutMs = Math.max(1, Math.min(requestTimeoutMs, deadline - Date.now()));
    const response = await send(`/predictions/${encodeURIComponent(id)}`, signal, {}, timeoutMs);
    if (response.status === 404) return undefined;
    if (!response.ok) throw httpFailure(response, 'poll');
    return response.json() as Prediction;
  }

  /** Polls until the prediction ends or the deadline passes; transient poll errors just wait for the next poll. */
  async function settle(call: ImageCall, first: Prediction, deadline: number): Promise<Prediction> {
    let prediction = first;
    while (prediction.status !== 'succeeded' && !TERMINAL_FAILURES.has(prediction.status)) {
      if (Date.now() + pollIntervalMs > deadline) {
        throw new StageFailureError(
          'PREDICTION_TIMEOUT',
          `Replicate: prediction ${first.id} is still ${prediction.status}`,
          true,
        );
      }
      // With webhooks, the poll interval is a slow fallback: a delivered prediction ends the wait at once.
      const delivered = opts.webhook
        ? await opts.webhook.waiters.waitFor(first.id, pollIntervalMs, call.signal)
        : await sleep(pollIntervalMs, call.signal);
      if (delivered) {
        prediction = delivered;
        continue;
      }
      try {
        const next = await fetchPrediction(first.id, call.signal, deadline);
        if (!next) {
          await opts.refs.put(call, PREDICTION_REF, '');
          throw new StageFailureError('PREDICTION_LOST', `Replicate: prediction ${first.id} is gone`, true);
        }
        prediction = next;
      } catch (error) {
        if (!(error instanceof StageFailureError) || !error.retryable || error.code === 'PREDICTION_LOST') throw error;
      }
    }
    return prediction;
  }

  /** The stored prediction if it can still give us an image; a stale or unknown one is forgotten. */
  async function resume(call: ImageCall, deadline: number): Promise<Prediction | undefined> {
    const id = await opts.refs.get(call.blogId, PREDICTION_REF);
    if (!id) return undefined;
    const prediction = await fetchPrediction(id, call.signal, deadline);
    const expired =
      prediction?.status === 'succeeded' && Date.now() - Date.parse(prediction.completed_at ?? '') > OUTPUT_TTL_MS;
    if (prediction && !expired) return prediction;
    await opts.refs.put(call, PREDICTION_REF, '');
    return undefined;
  }

  return {
    name: 'replicate',
    async createHeaderImage(call): Promise<HeaderImage> {
      const deadline = Date.now() + deadlineMs;
      const prediction = await settle(call, (await resume(call, deadline)) ?? (await create(call)), deadline);
      const url = prediction.status === 'succeeded' ? outputUrl(prediction.output) : undefined;
      if (!url) {
        // A finished prediction is never polled again: the next attempt (or a `retry`) pays for a fresh one.
        await opts.refs.put(call, PREDICTION_REF, '');
        const why =
          prediction.status === 'succeeded'
            ? 'gave no image URL'
            : `${prediction.status}: ${reasonOf(prediction.error)}`;
        // `failed` is the model's run going wrong ("Try running it again"): a new prediction may well succeed, as
        // the next attempt. `canceled`/`aborted` were stopped on purpose: not retried.
        const retryable = prediction.status === 'failed';
        const message = clip(`Replicate: prediction ${prediction.id} ${why}`, 500);
        throw new StageFailureError('PREDICTION_FAILED', message, retryable);
      }
      return { url, alt: clip(`Header image for "${call.article.title}"`, 200) };
    },
  };
}
