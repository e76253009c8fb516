/**
 * HTTP: health, the blog API (same intake as NATS), later metrics and the dashboard. Fastify gives us
 * body limits, JSON parsing and routing; every error leaves as `{ error: { code, message } }`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { CommandError, InkwellError } from '../errors';
import type { Intake } from '../intake/intake';
import { MAX_COMMAND_BYTES } from '../intake/command.schema';
import type { Logger } from '../logger';
import { registerBlogRoutes } from './blogs.routes';
import { registerDashboard } from './dashboard';
import { registerEventStream, type EventStreamDeps } from './events.sse';
import { registerMetricsRoute, type Metrics } from './metrics';
import { registerTimelineRoutes } from './timeline.routes';
import { registerUsageRoutes, type UsageDeps } from './usage.routes';
import type { OutboxRepo } from '../db/outbox.repo';
import type { Fleet } from '../runtime/fleet.store';

/** What the HTTP server needs. */
export interface HttpDeps {
  intake: Intake;
  log: Logger;
  /** Resolves when the database answers; `/healthz` fails otherwise. */
  ping: () => Promise<void>;
  apiToken?: string;
  /** Metrics, dashboard, event stream and timeline: registered when the runtime provides them. */
  observe?: { metrics: Metrics; fleet: Fleet; outbox: OutboxRepo } & EventStreamDeps;
  /** Spend per store and day (`GET /api/stores/:instanceId/usage`). */
  usage?: UsageDeps;
}

const STATUS_OF: Record<string, number> = {
  INVALID_PAYLOAD: 400,
  INVALID_SELECTION: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
};

/** Builds the server (not listening yet). */
export function createHttpServer(deps: HttpDeps): FastifyInstance {
  const app = Fastify({ bodyLimit: MAX_COMMAND_BYTES, logger: false });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof CommandError) {
      return reply.status(STATUS_OF[err.code] ?? 400).send({ error: { code: err.code, message: err.message } });
    }
    if (err instanceof InkwellError && err.retryable) {
      // e.g. the store's owner did not answer: nothing was applied, the caller may try again.
      return reply.status(503).send({ error: { code: err.code, message: err.message } });
    }
    if (err.statusCode && err.statusCode < 500) {
      // Fastify's own (bad JSON, body too large, unsupported media type): all INVALID_PAYLOAD, 400 as the contract says.
      return reply.status(400).send({ error: { code: 'INVALID_PAYLOAD', message: err.message } });
    }
    deps.log.error({ err }, 'http request failed');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } }),
  );

  app.get('/healthz', async (_req, reply) => {
    try {
      await deps.ping();
      return { status: 'ok' };
    } catch {
      return reply.status(503).send({ status: 'unavailable', reason: 'database unreachable' });
    }
  });

  registerBlogRoutes(app, deps);
  if (deps.usage) registerUsageRoutes(app, deps.usage);
  if (deps.observe) {
    registerMetricsRoute(app, deps.observe.metrics);
    registerDashboard(app, deps.observe);
    registerEventStream(app, deps.observe);
    registerTimelineRoutes(app, { intake: deps.intake, outbox: deps.observe.outbox });
  }
  return app;
}
