/**
 * The dashboard's status groups come from machines/blog.types.ts, served as a module, never copied into its JS:
 * the module the page imports evaluates to the machine's groups, and no dashboard file lists statuses by hand.
 */
import { readFile } from 'node:fs/promises';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { BLOG_STATUSES, FINAL_STATUSES, STAGES, WAITING_STATUSES } from '../../machines/blog.types';
import { registerDashboard } from '../../src/http/dashboard';

describe('dashboard status groups', () => {
  it('serves /dashboard/statuses.js with the groups of the machine', async () => {
    const app = Fastify();
    registerDashboard(app, { fleet: { snapshot: () => ({}) } as never });
    const res = await app.inject({ method: 'GET', url: '/dashboard/statuses.js' });
    await app.close();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/javascript');
    const mod = (await import(`data:text/javascript,${encodeURIComponent(res.body)}`)) as Record<string, unknown>;
    expect({ ...mod }).toEqual({ STATUSES: BLOG_STATUSES, STAGES, WAITING: WAITING_STATUSES, FINAL: FINAL_STATUSES });
  });

  it('lists no group of statuses by hand in the page scripts', async () => {
    for (const file of ['app.js', 'owner.js']) {
      const text = await readFile(new URL(`../../src/http/dashboard/${file}`, import.meta.url), 'utf8');
      expect(text, file).toMatch(/from '\.\/statuses\.js'/);
      // Two or more status names in one array literal is a hand-written group.
      expect(text, file).not.toMatch(/\[\s*'[A-Z_]+',\s*'[A-Z_]+'/);
    }
  });
});
