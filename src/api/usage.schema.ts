/** The query of `GET /api/stores/:instanceId/usage`: checked by its route, described by the OpenAPI document. */
import { z } from 'zod';
import { utcDay } from '../runtime/usage.ledger';

const isoDay = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}/.test(v) && !Number.isNaN(Date.parse(v)), 'must be an ISO date (YYYY-MM-DD)')
  .transform((v) => (v.length === 10 ? v : utcDay(Date.parse(v))));
/** The query `GET /api/stores/:instanceId/usage` takes (also the OpenAPI document's). */
export const usageQuerySchema = z.object({ from: isoDay.optional(), to: isoDay.optional() });
