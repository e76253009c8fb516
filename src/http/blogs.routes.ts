/** `/api/blogs` routes: thin adapters from HTTP to the intake. */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CommandError } from '../errors';
import { idSchema, type CommandName } from '../intake/command.schema';
import { OPENAPI_PATH } from './openapi.route';
import type { HttpDeps } from './http.deps';

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

function param(value: unknown, name: string): string {
  const parsed = idSchema.safeParse(value);
  if (!parsed.success)
    throw new CommandError('INVALID_PAYLOAD', `${name}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** The caller's W3C `traceparent`, which the command's span continues. */
const traceOf = (req: FastifyRequest) =>
  typeof req.headers.traceparent === 'string' ? { traceparent: req.headers.traceparent } : {};

function optionalParam(value: unknown, name: string): string | undefined {
  return value === undefined || value === '' ? undefined : param(value, name);
}

/** Registers the blog API on `app`. */
export function registerBlogRoutes(app: FastifyInstance, deps: HttpDeps): void {
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (!deps.apiToken || !req.url.startsWith('/api') || req.routeOptions.url === OPENAPI_PATH) return;
    // EventSource cannot send headers: the event stream alone may carry the token as `?token=`.
    const streamToken = req.routeOptions.url === '/api/events' ? (req.query as { token?: string }).token : undefined;
    const header = req.headers.authorization ?? (streamToken ? `Bearer ${streamToken}` : undefined);
    if (!tokenMatches(header, deps.apiToken)) {
      throw new CommandError('UNAUTHORIZED', 'a valid Authorization: Bearer <token> header is required');
    }
  });

  app.get<{ Params: { blogId: string }; Querystring: { instanceId?: string } }>('/api/blogs/:blogId', async (req) =>
    deps.intake.get(param(req.params.blogId, 'blogId'), optionalParam(req.query.instanceId, 'instanceId')),
  );

  app.get('/api/blogs', async (req) => {
    // Empty parameters (`?status=`) mean "not given".
    const query = Object.fromEntries(Object.entries(req.query as Record<string, string>).filter(([, v]) => v !== ''));
    return deps.intake.list(query);
  });

  app.post('/api/blogs', async (req, reply) => {
    const { blog } = await deps.intake.apply('create', req.body, traceOf(req));
    return reply.status(202).send(blog);
  });

  // Registered before `/:blogId/...`; fastify prefers the static segment anyway, so `bulk` is never a blog id here.
  for (const name of ['retry', 'cancel'] as const) {
    app.post(`/api/blogs/bulk/${name}`, async (req, reply) => {
      if (!deps.bulk) throw new CommandError('NOT_FOUND', 'bulk commands are not available here');
      return reply.status(202).send(await deps.bulk.run(name, req.body));
    });
  }

  for (const name of ['select', 'cancel', 'retry'] as const satisfies CommandName[]) {
    app.post<{ Params: { blogId: string } }>(`/api/blogs/:blogId/${name}`, async (req, reply) => {
      const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
      const blogId = param(req.params.blogId, 'blogId');
      const command = name === 'select' ? { ...body, blogId } : { blogId, instanceId: body.instanceId };
      const { blog } = await deps.intake.apply(name, command, traceOf(req));
      return reply.status(202).send(blog);
    });
  }
}
