/*
 * A `fetch` for SDKs that take one (the `openai` SDK), over undici's `request`: the same HTTP client as Node's own
 * `fetch` without its WHATWG request layers (Request, body streams, a second write for the body), which made the
 * SDK's calls one of the runtime's larger CPU costs on the real path. Only what such an SDK sends is supported: a
 * method, headers and a string (or absent) body, and a signal; the answer is read whole before it is returned (the
 * caller's abort and timeout still end the read), and is a real `Response`.
 */
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { request } from 'undici';

/** undici's response headers as a WHATWG `Headers` (list values, e.g. `set-cookie`, appended one by one). */
export function toHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const name of Object.keys(raw)) {
    const value = raw[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  return headers;
}

/**
 * Milliseconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date) as `get` reads them from an answer's
 * headers; undefined when it gave none that reads. Every adapter's answers go through this one reading.
 */
export function retryAfterOf(get: (name: string) => string | null | undefined, now = Date.now()): number | undefined {
  const ms = Number(get('retry-after-ms') ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);
  const value = get('retry-after')?.trim();
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** `retryAfterOf` a WHATWG `Headers`. */
export const parseRetryAfter = (headers: Headers | undefined, now = Date.now()): number | undefined =>
  retryAfterOf((name) => headers?.get(name), now);

/** Whether `error` is the timeout `withTimeout` reports. */
export const isTimeout = (error: unknown): boolean => error instanceof Error && error.name === 'TimeoutError';

/**
 * Runs `fn` (an HTTP exchange, the body read included) with a signal that aborts when the caller's `signal` does or
 * after `timeoutMs`; a failure after the timer fired is rethrown as a `TimeoutError` (see `isTimeout`) with the
 * original as its cause, unless the caller aborted. The timer and the listener are removed however it ends. The
 * Wix client and the Replicate adapter send through it; the OpenAI SDK keeps its own timeout.
 */
export async function withTimeout<T>(
  signal: AbortSignal | undefined,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no answer in ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn(controller.signal);
  } catch (error) {
    if (timedOut && !signal?.aborted) {
      throw Object.assign(new Error(`no answer in ${timeoutMs} ms`, { cause: error }), { name: 'TimeoutError' });
    }
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

// Statuses whose `Response` may have no body.
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The body as sent, undone from a content coding `fetch` would have decoded (we ask for none, but may get one). */
function decoded(body: Buffer, coding: string | string[] | undefined): Buffer {
  const c = (Array.isArray(coding) ? coding.join(',') : (coding ?? '')).trim().toLowerCase();
  if (c === '' || c === 'identity') return body;
  if (c === 'gzip' || c === 'x-gzip') return gunzipSync(body);
  if (c === 'deflate') return inflateSync(body);
  if (c === 'br') return brotliDecompressSync(body);
  return body;
}

/** The request headers of `init` as a plain object (`new Headers` takes every form `fetch` does). */
function plainHeaders(init: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!init) return out;
  const headers = init instanceof Headers ? init : new Headers(init);
  headers.forEach((value, name) => (out[name] = value));
  return out;
}

/**
 * `fetch(url, init)` over undici's `request`. Failures are what `fetch` gives: the signal's reason when it aborted,
 * else a `TypeError('fetch failed')` with undici's error as its cause.
 */
export async function undiciFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  if (typeof input !== 'string' && !(input instanceof URL))
    throw new TypeError('undiciFetch takes a URL, not a Request');
  const { body, signal } = init;
  if (body !== undefined && body !== null && typeof body !== 'string') {
    throw new TypeError('undiciFetch sends string bodies only');
  }
  if (signal?.aborted) throw signal.reason;
  try {
    const res = await request(input, {
      method: (init.method ?? 'GET').toUpperCase(),
      headers: plainHeaders(init.headers),
      ...(typeof body === 'string' ? { body } : {}),
      ...(signal ? { signal } : {}),
    });
    const status = res.statusCode;
    const bytes = Buffer.from(await res.body.arrayBuffer());
    const headers = toHeaders(res.headers);
    const content = NULL_BODY.has(status) ? null : decoded(bytes, res.headers['content-encoding']);
    const response = new Response(content, { status, headers });
    Object.defineProperty(response, 'url', { value: String(input) });
    return response;
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new TypeError('fetch failed', { cause: error });
  }
}
