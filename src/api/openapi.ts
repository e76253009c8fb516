/**
 * The OpenAPI 3.1 document of the HTTP API, built from `API_OPERATIONS` with zod's own JSON Schema output (draft
 * 2020-12, which OpenAPI 3.1 takes as is). Schemas named with `.meta({ id })` become `components.schemas`.
 */
import { z } from 'zod';
import { API_OPERATIONS, type ApiOperation } from './api.operations';
import { errorBodySchema } from './message.schemas';

type Json = Record<string, unknown>;

/** The contract's error codes and statuses, one response for all 4xx answers. */
const CLIENT_ERRORS = {
  description:
    'INVALID_PAYLOAD, INVALID_SELECTION: 400; UNAUTHORIZED (INKWELL_API_TOKEN set, bearer token missing or wrong): 401; ' +
    'NOT_FOUND (unknown, or of another store): 404; INVALID_STATE: 409',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

/** The version of the API this document describes (not the package's). */
export const API_VERSION = '1.0.0';

/**
 * JSON Schema of one zod schema, as the client sends it (`input`: defaults optional, transforms' input types);
 * its named parts move to `components`, and their references follow them.
 */
export function jsonSchemaOf(schema: z.ZodType, components: Json, refBase = '#/components/schemas/'): Json {
  const raw = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const {
    $schema: _dialect,
    $defs,
    ...rest
  } = JSON.parse(JSON.stringify(raw).replaceAll('"#/$defs/', `"${refBase}`)) as Json;
  Object.assign(components, $defs ?? {});
  return rest;
}

function operationOf(op: ApiOperation, components: Json): Json {
  const parameters = [
    ...[...op.path.matchAll(/:(\w+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    })),
    ...Object.entries(op.query?.shape ?? {}).map(([name, schema]) => ({
      name,
      in: 'query',
      required: !(schema as z.ZodType).safeParse(undefined).success,
      schema: jsonSchemaOf(schema as z.ZodType, components),
    })),
  ];
  const [status, body] = op.ok;
  const content =
    typeof body === 'string' ? { [body]: {} } : { 'application/json': { schema: jsonSchemaOf(body, components) } };
  return {
    summary: op.summary,
    operationId: `${op.method}${op.path.replace(/[^A-Za-z]+(\w)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    ...(op.open ? { security: [] } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: jsonSchemaOf(op.body, components) } },
          },
        }
      : {}),
    responses: {
      [status]: { description: 'OK', content },
      ...(op.path.startsWith('/api/') ? { '4XX': CLIENT_ERRORS } : {}),
    },
  };
}

/** Builds the document. */
export function buildOpenApiDocument(operations: ApiOperation[] = API_OPERATIONS): Json {
  const components: Json = {};
  jsonSchemaOf(errorBodySchema, components);
  const paths: Record<string, Json> = {};
  for (const op of operations) {
    (paths[op.path.replace(/:(\w+)/g, '{$1}')] ??= {})[op.method] = operationOf(op, components);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Inkwell',
      version: API_VERSION,
      description: 'The HTTP API of Inkwell, the blog-generation runtime.',
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'INKWELL_API_TOKEN, when it is set' } },
    },
  };
}
