/** `GET /api/stores/:instanceId/usage`: a store's spend per UTC day, with its estimated cost in dollars. */
import type { FastifyInstance } from 'fastify';
import { addUsage } from '../../machines/blog.types';
import type { DayUsage } from '../db/usage.repo';
import { CommandError } from '../errors';
import { usageQuerySchema } from '../api/usage.schema';
import { utcDay } from '../runtime/usage.ledger';
import { describeIssues, idSchema } from '../intake/command.schema';
import { estimateCost, type Prices } from '../runtime/prices';

/** What the route reads. */
export interface UsageDeps {
  days(instanceId: string, from: string, to: string): Promise<DayUsage[]>;
  prices: Prices;
  now?: () => number;
}

const DAY_MS = 86_400_000;
/** An ISO date (`2026-03-01`) or date-time (its UTC day counts). */
/** Registers the route on `app` (behind the API token like every `/api` route). */
export function registerUsageRoutes(app: FastifyInstance, deps: UsageDeps): void {
  app.get<{ Params: { instanceId: string } }>('/api/stores/:instanceId/usage', async (req) => {
    const id = idSchema.safeParse(req.params.instanceId);
    if (!id.success) throw new CommandError('INVALID_PAYLOAD', `instanceId: ${describeIssues(id.error)}`);
    const given = Object.fromEntries(Object.entries(req.query as Record<string, string>).filter(([, v]) => v !== ''));
    const q = usageQuerySchema.safeParse(given);
    if (!q.success) throw new CommandError('INVALID_PAYLOAD', describeIssues(q.error));
    // Without bounds: the last 30 days up to today (UTC).
    const to = q.data.to ?? utcDay((deps.now ?? Date.now)());
    const from = q.data.from ?? utcDay(Date.parse(to) - 29 * DAY_MS);
    if (from > to) throw new CommandError('INVALID_PAYLOAD', `from (${from}) is after to (${to})`);
    const rows = await deps.days(id.data, from, to);
    let total = addUsage(undefined, undefined);
    const days = rows.map((r) => {
      const usage = { inputTokens: r.inputTokens, outputTokens: r.outputTokens, images: r.images };
      total = addUsage(total, usage);
      return { day: r.day, ...usage, estimatedCostUsd: estimateCost(usage, deps.prices) };
    });
    return {
      instanceId: id.data,
      from,
      to,
      days,
      total: { ...total, estimatedCostUsd: estimateCost(total, deps.prices) },
      prices: deps.prices,
    };
  });
}
