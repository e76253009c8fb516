/** The list query of `GET /api/blogs`, and its opaque keyset cursor. */
import { z } from 'zod';
import { BLOG_STATUSES } from '../../machines/blog.types';
import { idSchema } from './command.schema';

/** Encodes the position after (createdAt, blogId) as an opaque, URL-safe cursor. */
export function encodeCursor(createdAt: Date, blogId: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), blogId])).toString('base64url');
}

const cursorSchema = z.string().transform((value, ctx) => {
  try {
    const [at, blogId] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as [unknown, unknown];
    const createdAt = new Date(String(at));
    if (Number.isNaN(createdAt.getTime()) || !idSchema.safeParse(blogId).success) throw new Error('bad cursor');
    return { createdAt, blogId: blogId as string };
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a cursor this API returned' });
    return z.NEVER;
  }
});

export const listSchema = z.object({
  instanceId: idSchema.optional(),
  status: z.enum(BLOG_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: cursorSchema.optional(),
});
