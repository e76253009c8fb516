/**
 * `GET /api/openapi.json` on the embedded default: a valid OpenAPI 3.1 document (checked by @readme/openapi-parser),
 * served without the API token, that documents every route the server has and no route it lacks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compileErrors, validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';

let dataDir: string;
let runtime: Runtime;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-openapi-'));
  const config = loadConfig({
    INKWELL_DATA_DIR: dataDir,
    INKWELL_API_TOKEN: 'secret-token',
    INKWELL_LOG_LEVEL: 'silent',
  });
  ({ runtime } = await composeRuntime({ config, database: await openPglite(undefined) }));
  await runtime.start(false);
}, 60_000);

afterAll(async () => {
  await runtime?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** `METHOD /path` of every route the server serves (fastify's route tree, flattened), HEAD left out. */
function servedRoutes(): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of runtime.http.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[└├]── (\S+)(?: \(([^)]+)\))?/.exec(line);
    if (!match) continue;
    const depth = (match[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(match[2] ?? '');
    const url = stack.join('');
    for (const method of (match[3] ?? '').split(', ').filter((m) => m && m !== 'HEAD')) routes.push(`${method} ${url}`);
  }
  return routes.sort();
}

async function fetchDocument() {
  return runtime.http.inject({ method: 'GET', url: '/api/openapi.json' });
}

describe('GET /api/openapi.json', () => {
  it('answers without the API token, while other /api routes ask for it', async () => {
    expect((await fetchDocument()).statusCode).toBe(200);
    expect((await runtime.http.inject({ method: 'GET', url: '/api/blogs' })).statusCode).toBe(401);
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const document = (await fetchDocument()).json<{ openapi: string }>();
    expect(document.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(document) as never);
    expect(result.valid ? 'valid' : compileErrors(result)).toBe('valid');
  });

  it('documents every route the server serves, and only those', async () => {
    const document = (await fetchDocument()).json<{ paths: Record<string, Record<string, unknown>> }>();
    const documented = Object.entries(document.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`))
      .sort();
    const served = servedRoutes().filter((r) => !r.includes('/dashboard/')); // the dashboard's own assets
    expect(served.length).toBeGreaterThan(10);
    expect(documented).toEqual(served);
  });

  it('describes request bodies with the zod schemas that validate them', async () => {
    const document = (await fetchDocument()).json<Record<string, any>>(); // eslint-disable-line @typescript-eslint/no-explicit-any
    const create = document.paths['/api/blogs'].post.requestBody.content['application/json'].schema;
    expect(create.required).toEqual(['instanceId']);
    expect(create.additionalProperties).toBe(false);
    expect(create.properties.topic.maxLength).toBe(500);
    const select = document.paths['/api/blogs/{blogId}/select'].post.requestBody.content['application/json'].schema;
    expect(select.properties.ideaIndex.type).toBe('integer');
    expect(select.properties.blogId).toBeUndefined(); // it comes from the path
  });
});
