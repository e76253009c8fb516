/**
 * What Inkwell sends (events, rejections) and answers (the blog view), as zod schemas. They are not used to validate
 * our own output: they describe it in the OpenAPI and AsyncAPI documents, beside the request schemas that do validate.
 */
import { z } from 'zod';
import { BLOG_STATUSES } from '../../machines/blog.types';
import { idSchema } from '../intake/command.schema';

const status = z.enum(BLOG_STATUSES);
const isoTime = z.string().meta({ format: 'date-time' });

export const ideaSchema = z.object({ title: z.string(), summary: z.string() }).meta({ id: 'Idea' });
export const postSchema = z.object({ id: z.string(), url: z.string().optional() }).meta({ id: 'Post' });
export const failureSchema = z
  .object({ stage: z.string(), code: z.string(), message: z.string(), attempts: z.number().int() })
  .meta({ id: 'Failure', description: 'Why a blog is FAILED' });
export const usageSchema = z
  .object({ inputTokens: z.number().int(), outputTokens: z.number().int(), images: z.number().int() })
  .meta({ id: 'Usage', description: 'What the blog has spent so far, retries included' });

const publicFields = {
  ideas: z.array(ideaSchema).optional(),
  idea: ideaSchema.optional(),
  post: postSchema.optional(),
  error: failureSchema.optional(),
  usage: usageSchema.optional(),
};

/** A blog as the HTTP API returns it. */
export const blogViewSchema = z
  .object({
    blogId: idSchema,
    instanceId: idSchema,
    status,
    seq: z.number().int(),
    ...publicFields,
    createdAt: isoTime,
    updatedAt: isoTime,
  })
  .meta({ id: 'Blog' });

/** `<prefix>.events.<instanceId>.<blogId>`: one status change. */
export const blogEventSchema = z
  .object({
    blogId: idSchema,
    instanceId: idSchema,
    status,
    previousStatus: status.nullable(),
    seq: z.number().int().min(1),
    at: isoTime,
    ...publicFields,
  })
  .meta({ id: 'BlogEvent' });

/** The codes a command can be refused with, over NATS and HTTP alike. */
export const rejectionCodeSchema = z.enum(['INVALID_PAYLOAD', 'NOT_FOUND', 'INVALID_STATE', 'INVALID_SELECTION']);

/** `<prefix>.rejected`: a command that could not be applied. */
export const rejectionSchema = z
  .object({
    subject: z.string(),
    blogId: z.string().optional(),
    instanceId: z.string().optional(),
    code: rejectionCodeSchema,
    message: z.string(),
    at: isoTime,
  })
  .meta({ id: 'Rejection' });

/** Every HTTP error body. */
export const errorBodySchema = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .meta({ id: 'Error' });
