/**
 * Replicate prediction webhooks: the Standard Webhooks signature check, the memory of webhook ids already seen, and
 * the waiters through which a finished prediction reaches the image stage that polls it (which then stops waiting
 * for its next poll). Polling stays as the fallback for a webhook that never comes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { abortedFailure, assertNotAborted } from './offline/seed';

/** The prediction as a webhook body (or a poll) carries it; only these fields are read. */
export interface WebhookPrediction {
  id: string;
  status: string;
  output?: unknown;
  error?: unknown;
  completed_at?: string | null;
}

/** Signatures older (or further ahead) than this are refused. */
export const WEBHOOK_TOLERANCE_MS = 5 * 60_000;

/**
 * Checks a Standard Webhooks signature: `webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256>` of
 * `<webhook-id>.<webhook-timestamp>.<raw body>` under the base64 key after `whsec_`. Returns why it fails, or null.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer,
  now = Date.now(),
): string | null {
  const header = (name: string) => (typeof headers[name] === 'string' ? headers[name] : undefined);
  const [id, timestamp, signatures] = [header('webhook-id'), header('webhook-timestamp'), header('webhook-signature')];
  if (!id || !timestamp || !signatures) return 'missing webhook-id, webhook-timestamp or webhook-signature';
  if (!/^\d{1,12}$/.test(timestamp)) return 'webhook-timestamp is not Unix seconds';
  if (Math.abs(now - Number(timestamp) * 1000) > WEBHOOK_TOLERANCE_MS) return 'webhook-timestamp is too old or new';
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), rawBody]);
  const expected = createHmac('sha256', key).update(signed).digest();
  for (const candidate of signatures.split(' ')) {
    const [version, value] = candidate.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
  }
  return 'no signature matches';
}

/** Webhook ids seen within the tolerance window (a later repeat is refused by its timestamp anyway). */
export function createSeenIds(ttlMs = 2 * WEBHOOK_TOLERANCE_MS, now = Date.now) {
  const seen = new Map<string, number>();
  return {
    /** True the first time `id` is offered in the window. */
    first(id: string): boolean {
      const t = now();
      for (const [old, at] of seen) {
        if (t - at <= ttlMs) break; // insertion order is time order
        seen.delete(old);
      }
      if (seen.has(id)) return false;
      seen.set(id, t);
      return true;
    },
  };
}

/** The statuses a prediction ends in: only these end an image stage's wait. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'canceled', 'aborted']);

/** Where delivered predictions meet the image stages waiting for them. */
export function createPredictionWaiters(keepMs = 10 * 60_000, now = Date.now) {
  const waiting = new Map<string, Set<(p: WebhookPrediction) => void>>();
  // A webhook may land before its stage starts waiting (between the create's answer and the wait): kept a while.
  const early = new Map<string, { prediction: WebhookPrediction; at: number }>();
  return {
    /**
     * Hands a finished prediction to whoever waits for it. One still running (a `start`/`output`/`logs` event, or
     * a delivery that overtook the `completed` one) carries no news and is dropped: kept, it would answer every
     * later wait at once, and the stage's loop would spin on it without ever yielding to timers or I/O.
     */
    deliver(prediction: WebhookPrediction): void {
      if (!FINAL_STATUSES.has(prediction.status)) return;
      const t = now();
      for (const [id, e] of early) if (t - e.at > keepMs) early.delete(id);
      early.set(prediction.id, { prediction, at: t });
      for (const wake of waiting.get(prediction.id) ?? []) wake(prediction);
    },
    /** The delivered prediction `id` if it comes within `ms`, else undefined; rejects when `signal` fires. */
    waitFor(id: string, ms: number, signal: AbortSignal): Promise<WebhookPrediction | undefined> {
      assertNotAborted(signal);
      const ready = early.get(id);
      if (ready) return Promise.resolve(ready.prediction);
      return new Promise((resolve, reject) => {
        const set = waiting.get(id) ?? new Set();
        waiting.set(id, set);
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          set.delete(wake);
          if (set.size === 0) waiting.delete(id);
        };
        const wake = (p: WebhookPrediction) => (done(), resolve(p));
        const onAbort = () => (done(), reject(abortedFailure(signal)));
        const timer = setTimeout(() => (done(), resolve(undefined)), ms);
        set.add(wake);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}

/** The waiters' interface. */
export type PredictionWaiters = ReturnType<typeof createPredictionWaiters>;
