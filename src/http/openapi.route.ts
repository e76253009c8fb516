/**
 * `GET /api/openapi.json`: the OpenAPI document, built once. Served without the API token, like the dashboard: it
 * describes the API, not its data, and tools fetch it before they hold any credential.
 */
import type { FastifyInstance } from 'fastify';
import { buildOpenApiDocument } from '../api/openapi';

/** The route's path, which the token check lets through. */
export const OPENAPI_PATH = '/api/openapi.json';

/** Registers the document's route. */
export function registerOpenApiRoute(app: FastifyInstance): void {
  const document = JSON.stringify(buildOpenApiDocument());
  app.get(OPENAPI_PATH, async (_req, reply) => reply.type('application/json; charset=utf-8').send(document));
}
