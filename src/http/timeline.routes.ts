/**
 * `GET /api/blogs/:blogId/events?instanceId=`: a blog's status events in `seq` order (the dashboard's timeline),
 * from the outbox, which keeps them for a day after they are published. Another store's blog is a 404.
 */
import type { FastifyInstance } from 'fastify';
import type { OutboxRepo } from '../db/outbox.repo';
import { CommandError } from '../errors';
import type { Intake } from '../intake/intake';
import { idSchema } from '../intake/command.schema';

/** What the timeline reads. */
export interface TimelineDeps {
  intake: Intake;
  outbox: OutboxRepo;
}

function id(value: unknown, name: string): string {
  const parsed = idSchema.safeParse(value);
  if (!parsed.success) throw new CommandError('INVALID_PAYLOAD', `${name}: invalid`);
  return parsed.data;
}

/** Registers the timeline route. */
export function registerTimelineRoutes(app: FastifyInstance, deps: TimelineDeps): void {
  app.get<{ Params: { blogId: string }; Querystring: { instanceId?: string } }>(
    '/api/blogs/:blogId/events',
    async (req) => {
      const blogId = id(req.params.blogId, 'blogId');
      const instanceId = req.query.instanceId ? id(req.query.instanceId, 'instanceId') : undefined;
      await deps.intake.get(blogId, instanceId); // NOT_FOUND for unknown blogs and other stores' blogs
      const rows = await deps.outbox.forBlog(blogId);
      return { items: rows.map((row) => row.payload) };
    },
  );
}
