/**
 * The HTTP API's operations, one line each, for the OpenAPI document. Request schemas are the ones the routes
 * validate with; a new route adds its line here (the OpenAPI test fails for an `/api` or `/hooks` route without one).
 */
import { z } from 'zod';
import { blogRefSchema, createSchema, idSchema, selectSchema } from '../intake/command.schema';
import { bulkSchema } from '../intake/bulk.schema';
import { listSchema } from '../intake/list.schema';
import { usageQuerySchema } from './usage.schema';
import { blogEventSchema, blogViewSchema } from './message.schemas';

/** One documented operation. `path` is fastify's (`:param`); `ok` is the success status and its body. */
export interface ApiOperation {
  method: 'get' | 'post';
  path: string;
  summary: string;
  query?: z.ZodObject;
  body?: z.ZodType;
  ok: [status: number, body: z.ZodType | string];
  /** Served without the API token. */
  open?: boolean;
}

const storeQuery = z.object({ instanceId: idSchema.optional() });
const blogPage = z.object({ items: z.array(blogViewSchema), nextCursor: z.string().nullable() });
const bulkAnswer = z.object({ matched: z.number().int(), applied: z.number().int() });
const bodyWithoutBlogId = <T extends z.ZodObject>(schema: T) => schema.omit({ blogId: true });

/** Every route of the API, in the contract's order. */
// prettier-ignore
export const API_OPERATIONS: ApiOperation[] = [
  { method: 'get', path: '/healthz', summary: 'Readiness: 200 ok; 503 { status: draining } while stopping, { status: degraded, down } while a service is down', ok: [200, z.object({ status: z.literal('ok') })], open: true },
  { method: 'get', path: '/livez', summary: 'Liveness: 200 while the process runs, draining included', ok: [200, z.object({ status: z.literal('ok') })], open: true },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', ok: [200, 'text/plain'], open: true },
  { method: 'get', path: '/api/blogs/:blogId', summary: 'One blog', query: storeQuery, ok: [200, blogViewSchema] },
  { method: 'get', path: '/api/blogs', summary: 'Blogs, newest first, by keyset pages', query: listSchema, ok: [200, blogPage] },
  { method: 'post', path: '/api/blogs', summary: 'Create a blog', body: createSchema, ok: [202, blogViewSchema] },
  { method: 'post', path: '/api/blogs/:blogId/select', summary: 'Select one of the proposed ideas', body: bodyWithoutBlogId(selectSchema), ok: [202, blogViewSchema] },
  { method: 'post', path: '/api/blogs/:blogId/cancel', summary: 'Cancel a blog', body: bodyWithoutBlogId(blogRefSchema), ok: [202, blogViewSchema] },
  { method: 'post', path: '/api/blogs/:blogId/retry', summary: 'Resume a FAILED blog at the stage that failed', body: bodyWithoutBlogId(blogRefSchema), ok: [202, blogViewSchema] },
  { method: 'post', path: '/api/blogs/bulk/retry', summary: 'Retry every FAILED blog the filters match, each through the normal command path', body: bulkSchema, ok: [202, bulkAnswer] },
  { method: 'post', path: '/api/blogs/bulk/cancel', summary: 'Cancel every unfinished blog the filters match, each through the normal command path', body: bulkSchema, ok: [202, bulkAnswer] },
  { method: 'get', path: '/api/stores/:instanceId/usage', summary: "A store's spend per UTC day, with its estimated cost", query: usageQuerySchema, ok: [200, z.record(z.string(), z.unknown())] },
  { method: 'post', path: '/hooks/replicate', summary: "Replicate's prediction webhooks, verified by their Standard Webhooks signature (401 when they do not verify)", body: z.record(z.string(), z.unknown()), ok: [200, z.object({ received: z.enum(['ok', 'repeat']) })], open: true },
  { method: 'get', path: '/api/blogs/:blogId/events', summary: "A blog's status events in seq order", query: storeQuery, ok: [200, z.object({ items: z.array(blogEventSchema) })] },
  { method: 'get', path: '/api/events', summary: 'Status events as Server-Sent Events (the token may come as ?token=)', query: storeQuery.extend({ token: z.string().optional() }), ok: [200, 'text/event-stream'] },
  { method: 'get', path: '/api/fleet', summary: "The fleet's aggregates, as the dashboard draws them", ok: [200, z.record(z.string(), z.unknown())] },
  { method: 'get', path: '/api/openapi.json', summary: 'This document', ok: [200, z.record(z.string(), z.unknown())], open: true },
  { method: 'get', path: '/', summary: 'The live dashboard', ok: [200, 'text/html'], open: true },
];
