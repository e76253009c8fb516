/** An HTTP call to a runtime's server without a socket (fastify inject), with the bearer token and a JSON body. */
import type { FastifyInstance } from 'fastify';

/** Calls `method url` on `app`; `body` is sent as JSON (a string as it is); resolves with status and parsed body. */
export async function injectJson(
  app: FastifyInstance,
  token: string | null,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
) {
  const res = await app.inject({
    method,
    url,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.statusCode, body: res.json<Record<string, any>>() }; // eslint-disable-line @typescript-eslint/no-explicit-any
}
