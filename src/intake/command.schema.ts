/** The command bodies of the contract, validated at the boundary (NATS and HTTP share these). */
import { z } from 'zod';

/** 1–64 characters of `A-Z a-z 0-9 _ -`: blog and store ids. */
export const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -');

/** Largest command body accepted, in bytes. */
export const MAX_COMMAND_BYTES = 64 * 1024;

const short = (max: number) => z.string().trim().min(1).max(max);

export const createSchema = z
  .object({
    blogId: idSchema.optional(),
    instanceId: idSchema,
    topic: short(500).optional(),
    idea: z
      .object({ title: short(200), summary: z.string().trim().max(2000).optional() })
      .strict()
      .optional(),
    keywords: z.array(short(100)).max(20).optional(),
    language: short(35).optional(),
    tone: short(100).optional(),
    authorMemberId: short(128).optional(),
  })
  .strict()
  .refine((c) => c.topic !== undefined || c.idea !== undefined, { message: 'one of topic, idea is required' });

export const selectSchema = z.object({ blogId: idSchema, instanceId: idSchema, ideaIndex: z.number().int() }).strict();
export const blogRefSchema = z.object({ blogId: idSchema, instanceId: idSchema }).strict();

/** A valid `create` body. */
export type CreateCommand = z.infer<typeof createSchema>;
/** A valid `select` body. */
export type SelectCommand = z.infer<typeof selectSchema>;
/** A valid `cancel` or `retry` body. */
export type BlogRefCommand = z.infer<typeof blogRefSchema>;

/** Command names, as the last token of their NATS subject. */
export type CommandName = 'create' | 'select' | 'cancel' | 'retry';

/** One line per problem: `path: message`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
