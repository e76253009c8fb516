/**
 * HTTP: health, the blog API (same intake as NATS), metrics, the event stream and the dashboard. Fastify gives us
 * body limits, JSON parsing and routing; every error leaves as `{ error: { code, message } }`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { CommandError, InkwellError, isConnectionFailure } from '../errors';
import { MAX_COMMAND_BYTES } from '../intake/command.schema';
import { registerBlogRoutes } from './blogs.routes';
import { downServices } from './health';
import type { HttpDeps } from './http.deps';
import { registerDashboard } from './dashboard';
import { registerReplicateHook } from './hooks.routes';
import { registerEventStream } from './events.sse';
import { registerMetricsRoute } from './metrics';
import { registerOpenApiRoute } from './openapi.route';
import { registerTimelineRoutes } from './timeline.routes';
import { registerUsageRoutes } from './usage.routes';

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
