/**
 * HTTP: health, the blog API (same intake as NATS), metrics, the event stream and the dashboard. Fastify gives us
 * body limits, JSON parsing and routing; every error leaves as `{ error: { code, message } }`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { CommandError, InkwellError, isConnectionFailure } from '../errors';
import type { Bulk } from '../intake/bulk';
import type { Intake } from '../intake/intake';
import { MAX_COMMAND_BYTES } from '../intake/command.schema';
import type { Logger } from '../logger';
import { registerBlogRoutes } from './blogs.routes';
import { downServices, type HealthProbes } from './health';
import { registerDashboard } from './dashboard';
import { registerReplicateHook, type ReplicateHookDeps } from './hooks.routes';
import { registerEventStream, type EventStreamDeps } from './events.sse';
import { registerMetricsRoute, type Metrics } from './metrics';
import { registerOpenApiRoute } from './openapi.route';
import { registerTimelineRoutes } from './timeline.routes';
import { registerUsageRoutes, type UsageDeps } from './usage.routes';
import type { OutboxRepo } from '../db/outbox.repo';
import type { Fleet } from '../runtime/fleet.registry';

/** What the HTTP server needs. */
export interface HttpDeps {
  intake: Intake;
  /** Bulk retry and cancel (`POST /api/blogs/bulk/...`). */
  bulk?: Bulk;
  log: Logger;
  /** Resolves when the database answers; `/healthz` fails otherwise. */
  ping: () => Promise<void>;
  /** True while the process drains: `/healthz` says so and commands are refused, so work goes elsewhere. */
  draining?: () => boolean;
  /** Connection state of NATS and Redis, for `/healthz` (see health.ts). */
  health?: Omit<HealthProbes, 'ping'>;
  apiToken?: string;
  /** `POST /hooks/replicate`, when a webhook secret is configured. */
  replicateHook?: ReplicateHookDeps;
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
    if (isConnectionFailure(err)) {
      // PostgreSQL (or NATS) is down: nothing was applied, the caller may try again once it is back.
      return reply
        .status(503)
        .send({ error: { code: 'UNAVAILABLE', message: 'a service Inkwell needs is unreachable' } });
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

  app.addHook('onRequest', async (req) => {
    if (deps.draining?.() && req.method !== 'GET' && req.method !== 'HEAD') {
      throw new InkwellError('DRAINING', 'this process is stopping: nothing was applied, send it again', true);
    }
  });

  // Liveness: the process answers, whatever its dependencies or a drain (restarting it would not help them).
  app.get('/livez', async () => ({ status: 'ok' }));

  app.get('/healthz', async (_req, reply) => {
    if (deps.draining?.()) return reply.status(503).send({ status: 'draining' });
    const down = await downServices({ ...deps.health, ping: deps.ping });
    if (down.length === 0) return { status: 'ok' };
    // Work waits for them meanwhile (nothing fails); this says which, and turns back to ok by itself.
    return reply.status(503).send({ status: 'degraded', down });
  });

  registerBlogRoutes(app, deps);
  registerReplicateHook(app, deps.replicateHook);
  registerOpenApiRoute(app);
  if (deps.usage) registerUsageRoutes(app, deps.usage);
  if (deps.observe) {
    registerMetricsRoute(app, deps.observe.metrics);
    registerDashboard(app, deps.observe);
    registerEventStream(app, deps.observe);
    registerTimelineRoutes(app, { intake: deps.intake, outbox: deps.observe.outbox });
  }
  return app;
}
