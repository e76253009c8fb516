/** `POST /hooks/replicate`: Replicate's prediction webhooks, verified against the raw body before anything is read. */
import type { FastifyInstance } from 'fastify';
import { createSeenIds, verifyWebhook, type WebhookPrediction } from '../providers/replicate.webhooks';
import type { Logger } from '../logger';

/** What the webhook route needs. */
export interface ReplicateHookDeps {
  secret: string;
  /** Hands a verified, first-seen prediction on (to every process: the one whose image stage waits takes it). */
  onPrediction: (prediction: WebhookPrediction) => void;
  log: Logger;
}

const isPrediction = (v: unknown): v is WebhookPrediction =>
  typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string';

/**
 * Registers the route in its own scope, so that only it receives the body as bytes. Without `deps` (no
 * `REPLICATE_WEBHOOK_SECRET`) nothing can verify, so every delivery is refused with 401.
 */
export function registerReplicateHook(app: FastifyInstance, deps: ReplicateHookDeps | undefined): void {
  const seen = createSeenIds();
  void app.register((scope, _opts, done) => {
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, next) => next(null, body));
    scope.post('/hooks/replicate', async (req, reply) => {
      if (!deps) {
        const message = 'webhooks are not configured here (INKWELL_PUBLIC_URL, REPLICATE_WEBHOOK_SECRET)';
        return reply.status(401).send({ error: { code: 'UNAUTHORIZED', message } });
      }
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const refused = verifyWebhook(deps.secret, req.headers, raw);
      if (refused) {
        deps.log.warn({ reason: refused }, 'refused a Replicate webhook');
        return reply.status(401).send({ error: { code: 'UNAUTHORIZED', message: `webhook not verified: ${refused}` } });
      }
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
      if (!isPrediction(body)) {
        return reply.status(400).send({ error: { code: 'INVALID_PAYLOAD', message: 'not a prediction' } });
      }
      // A repeated delivery (same webhook-id) is acknowledged and changes nothing.
      if (!seen.first(String(req.headers['webhook-id']))) return reply.status(200).send({ received: 'repeat' });
      deps.onPrediction(body);
      return reply.status(200).send({ received: 'ok' });
    });
    done();
  });
}
