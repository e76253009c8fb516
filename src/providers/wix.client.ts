/**
 * The Wix REST calls Inkwell makes, through undici's `request` and `WIX_BASE_URL` (`@wix/sdk` cannot take a
 * plain-http base URL and never retries; see docs/dependencies.md "Providers").
 *
 * Every HTTP request (token requests included) runs inside `limit(instanceId, ...)`, one request per call, never
 * nested, so a per-store limiter with concurrency 1 cannot deadlock. Nothing here retries on its own except the
 * one token refresh after a 401: retrying is the blog machine's job (with backoff and `retryAfterMs`).
 * Tokens and the app secret never appear in errors: messages are built from statuses and Wix error texts (never
 * from a token response), and the secret is redacted once more on the way out.
 */
import { request } from 'undici';
import { StageFailureError } from '../errors';
import { isTimeout, retryAfterOf, withTimeout } from './undici.fetch';
import { createTokenCache, type IssuedToken } from './wix.tokens';

/** Runs `fn` under the store's Wix limits (concurrency and requests per minute). */
export type WixLimit = <T>(instanceId: string, fn: () => Promise<T>) => Promise<T>;

export interface WixClientOptions {
  appId: string;
  appSecret: string;
  /** e.g. `https://www.wixapis.com` (no trailing path needed). */
  baseUrl: string;
  /** Per HTTP request, from the moment the limiter lets it start; default 30 s. */
  timeoutMs?: number;
  limit?: WixLimit;
  now?: () => number;
  /** Tokens are replaced this long before they expire; default 5 minutes. */
  tokenMarginMs?: number;
}

export interface WixRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** What the call does, for error messages ("create the draft post"). */
  what: string;
  /**
   * Runs inside the store's limit right before the exchange, once the limiter let the call start (so not for a call
   * refused there, e.g. for a store whose lease ran out by this process's clock): for a record that must exist if,
   * and only if, the call may have been made.
   */
  before?: () => Promise<void>;
}

export interface WixClient {
  /** An authorized call for the store `instanceId`; resolves to the parsed JSON body of a 2xx answer. */
  request(instanceId: string, req: WixRequest, signal: AbortSignal): Promise<unknown>;
}

interface RawResponse {
  status: number;
  retryAfterMs?: number;
  body: unknown;
  text: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_TOKEN_MARGIN_MS = 5 * 60_000;
/** Wix tokens last 4 hours when `expires_in` is missing. */
const DEFAULT_TOKEN_TTL_SEC = 4 * 60 * 60;

/** The message Wix put in an error body (`{ message, details: { applicationError: { description } } }`). */
function wixMessage(body: unknown, text: string): string {
  if (body && typeof body === 'object') {
    const b = body as { message?: unknown; details?: { applicationError?: { description?: unknown; code?: unknown } } };
    const app = b.details?.applicationError;
    const parts = [b.message, app?.code, app?.description].filter(
      (p): p is string => typeof p === 'string' && p !== '',
    );
    if (parts.length > 0) return [...new Set(parts)].join(': ').slice(0, 300);
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** Maps a non-2xx answer (other than the 401 the client handles) to a `StageFailureError`. */
export function httpFailure(res: RawResponse, what: string, instanceId: string): StageFailureError {
  const detail = wixMessage(res.body, res.text);
  const suffix = detail ? `: ${detail}` : '';
  const base = `Wix could not ${what} for store ${instanceId} (HTTP ${res.status})${suffix}`;
  const { status } = res;
  if (status === 429) return new StageFailureError('WIX_RATE_LIMITED', base, true, res.retryAfterMs);
  if (status >= 500) return new StageFailureError('WIX_UNAVAILABLE', base, true, res.retryAfterMs);
  if (status === 408) return new StageFailureError('WIX_TIMEOUT', base, true);
  if (status === 401)
    return new StageFailureError(
      'WIX_AUTH',
      `${base}; a fresh access token was refused too: is the app installed?`,
      false,
    );
  if (status === 403)
    return new StageFailureError(
      'WIX_FORBIDDEN',
      `${base}; the app lacks a permission (Manage Blog, Media) on it`,
      false,
    );
  if (status === 404) return new StageFailureError('WIX_NOT_FOUND', base, false);
  if (status === 400) return new StageFailureError('WIX_BAD_REQUEST', base, false);
  return new StageFailureError('WIX_REJECTED', base, false);
}

export function createWixClient(opts: WixClientOptions): WixClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const limit: WixLimit = opts.limit ?? ((_instanceId, fn) => fn());
  const now = opts.now ?? Date.now;
  /** Removes the app secret from a text that may reach logs (tokens are never put in messages at all). */
  const redact = (text: string): string =>
    opts.appSecret.length >= 4 ? text.split(opts.appSecret).join('[redacted]') : text;
  const clean = (failure: StageFailureError): StageFailureError =>
    new StageFailureError(failure.code, redact(failure.message), failure.retryable, failure.retryAfterMs);

  /** One HTTP exchange, inside the store's limit; network trouble, timeouts and aborts become failures. */
  const send = (
    instanceId: string,
    req: WixRequest,
    signal: AbortSignal | undefined,
    authorization?: string,
  ): Promise<RawResponse> =>
    limit(instanceId, async () => {
      if (signal?.aborted) throw aborted(signal);
      await req.before?.();
      try {
        return await withTimeout(signal, timeoutMs, async (linked) => {
          const headers: Record<string, string> = { accept: 'application/json' };
          if (req.body !== undefined) headers['content-type'] = 'application/json';
          // Wix wants the bare token: `Authorization: <token>`, no `Bearer` prefix.
          if (authorization) headers['authorization'] = authorization;
          // undici's `request`, not `fetch`: the same client without the WHATWG layers, a third of the CPU a call (a
          // publish makes five calls; fetch was the runtime's largest CPU cost on the real path).
          const res = await request(`${baseUrl}${req.path}`, {
            method: req.method,
            headers,
            ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
            signal: linked,
          });
          const text = await res.body.text();
          let body: unknown = undefined;
          if (text.trim() !== '') {
            try {
              body = JSON.parse(text);
            } catch {
              body = undefined;
            }
          }
          const header = (name: string) => {
            const value = res.headers[name];
            return Array.isArray(value) ? value[0] : value;
          };
          const retryAfterMs = retryAfterOf(header, now());
          return { status: res.statusCode, body, text, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
        });
      } catch (error) {
        if (error instanceof StageFailureError) throw error;
        if (signal?.aborted) throw aborted(signal);
        if (isTimeout(error))
          throw new StageFailureError(
            'WIX_TIMEOUT',
            `Wix did not answer in ${timeoutMs} ms while trying to ${req.what} for store ${instanceId}`,
            true,
          );
        const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : '';
        throw new StageFailureError(
          'WIX_NETWORK',
          redact(`network error while trying to ${req.what} for store ${instanceId}: ${cause || String(error)}`),
          true,
        );
      }
    });

  const fetchToken = async (instanceId: string): Promise<IssuedToken> => {
    const what = 'issue an access token';
    // Not tied to one caller's signal: the token is shared by every caller waiting for it.
    const res = await send(
      instanceId,
      {
        method: 'POST',
        path: '/oauth2/token',
        body: {
          grant_type: 'client_credentials',
          client_id: opts.appId,
          client_secret: opts.appSecret,
          instance_id: instanceId,
        },
        what,
      },
      undefined,
    );
    if (res.status === 429 || res.status >= 500 || res.status === 408) throw clean(httpFailure(res, what, instanceId));
    if (res.status < 200 || res.status > 299) {
      // The body of a refused token request is not echoed: only the status and a hint.
      throw new StageFailureError(
        'WIX_AUTH',
        `Wix refused an access token for store ${instanceId} (HTTP ${res.status}): check WIX_APP_ID and ` +
          'WIX_APP_SECRET and that the app is installed on that site',
        false,
      );
    }
    const body = res.body as { access_token?: unknown; expires_in?: unknown } | undefined;
    if (typeof body?.access_token !== 'string' || body.access_token === '') {
      throw new StageFailureError(
        'WIX_BAD_RESPONSE',
        `Wix answered the token request for store ${instanceId} without a token`,
        true,
      );
    }
    const expires = Number(body.expires_in);
    return {
      token: body.access_token,
      expiresInSec: Number.isFinite(expires) && expires > 0 ? expires : DEFAULT_TOKEN_TTL_SEC,
    };
  };

  const tokens = createTokenCache({ fetchToken, now, marginMs: opts.tokenMarginMs ?? DEFAULT_TOKEN_MARGIN_MS });

  return {
    async request(instanceId, req, signal) {
      if (signal.aborted) throw aborted(signal);
      let token = await tokens.get(instanceId);
      let res = await send(instanceId, req, signal, token);
      if (res.status === 401) {
        // Revoked or expired early: one fresh token, one more try; a second 401 is final.
        tokens.invalidate(instanceId, token);
        token = await tokens.get(instanceId);
        res = await send(instanceId, req, signal, token);
      }
      if (res.status < 200 || res.status > 299) throw clean(httpFailure(res, req.what, instanceId));
      if (res.body === undefined || res.body === null || typeof res.body !== 'object') {
        throw new StageFailureError(
          'WIX_BAD_RESPONSE',
          `Wix answered "${req.what}" for store ${instanceId} with HTTP ${res.status} but no JSON object`,
          true,
        );
      }
      return res.body;
    },
  };
}

/** The error a call rejects with once its signal fires (cancel or drain): not worth retrying. */
function aborted(signal: AbortSignal): StageFailureError {
  return new StageFailureError('ABORTED', 'the Wix call was aborted', false, undefined, { cause: signal.reason });
}
