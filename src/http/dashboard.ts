/**
 * The live dashboard: `GET /` and its assets (vanilla JS, served by Inkwell, no CDN, works offline), plus
 * `GET /api/fleet`, the fleet registry's aggregates it draws. The page is public; everything it shows comes
 * through `/api`, which asks for the token when one is set.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { BLOG_STATUSES, FINAL_STATUSES, STAGES, WAITING_STATUSES } from '../../machines/blog.types';
import type { Fleet } from '../runtime/fleet.registry';

const ASSETS_DIR = new URL('./dashboard/', import.meta.url);

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/owner.js': { file: 'owner.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** The status groups of `machines/blog.types.ts` as a module the page imports, so its JS never copies them. */
export const STATUSES_MODULE = [
  `export const STATUSES = ${JSON.stringify(BLOG_STATUSES)};`,
  `export const STAGES = ${JSON.stringify(STAGES)};`,
  `export const WAITING = ${JSON.stringify(WAITING_STATUSES)};`,
  `export const FINAL = ${JSON.stringify(FINAL_STATUSES)};`,
  '',
].join('\n');

/** Registers the dashboard page, its assets and the fleet snapshot. */
export function registerDashboard(app: FastifyInstance, deps: { fleet: Fleet }): void {
  for (const [route, asset] of Object.entries(ASSETS)) {
    const body = readFileSync(new URL(asset.file, ASSETS_DIR), 'utf8');
    app.get(route, async (_req, reply) =>
      reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').type(asset.type).send(body),
    );
  }
  app.get('/dashboard/statuses.js', async (_req, reply) =>
    reply
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .type('text/javascript; charset=utf-8')
      .send(STATUSES_MODULE),
  );
  app.get('/api/fleet', async () => deps.fleet.snapshot());
}
