/** The body of `POST /api/blogs/bulk/retry` and `/bulk/cancel`: filters, ANDed, at least one of them. */
import { z } from 'zod';
import { BLOG_STATUSES, STAGES } from '../../machines/blog.types';
import { idSchema } from './command.schema';

const isoTime = z.string().datetime({ offset: true, message: 'must be an ISO 8601 time' });

/** The filters of a bulk command; `dryRun` only counts. */
export const bulkSchema = z
  .object({
    instanceId: idSchema.optional(),
    status: z.enum(BLOG_STATUSES).optional(),
    /** The error code of a `FAILED` blog. */
    code: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be an error code')
      .optional(),
    /** The stage a `FAILED` blog failed in, or the status a blog is working in. */
    stage: z.enum(STAGES).optional(),
    createdAfter: isoTime.optional(),
    createdBefore: isoTime.optional(),
    dryRun: z.boolean().optional(),
  })
  .strict()
  .refine(({ dryRun: _, ...filters }) => Object.values(filters).some((v) => v !== undefined), {
    message: 'give at least one filter: instanceId, status, code, stage, createdAfter, createdBefore',
  });

/** A valid bulk body. */
export type BulkCommand = z.infer<typeof bulkSchema>;

/** The filters of a bulk command, without `dryRun`. */
export type BulkFilter = Omit<BulkCommand, 'dryRun'>;
