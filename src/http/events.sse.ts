/**
 * `GET /api/events[?instanceId=]`: the status events of every blog (or one store's) as Server-Sent Events, read
 * from the bus, so it shows the whole cluster in NATS mode and this process in the embedded one. EventSource
 * cannot send headers, so this route alone also takes the API token as `?token=` (checked in blogs.routes.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Bus } from '../bus/bus.port';
import type { Subjects } from '../bus/subjects';
import { CommandError } from '../errors';
import { idSchema } from '../intake/command.schema';

/** What the event stream reads. */
export interface EventStreamDeps {
  bus: Bus;
  subjects: Subjects;
}

/** Keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;
const decoder = new TextDecoder();

/** Registers the SSE route; open streams end when the server closes. */
export function registerEventStream(app: FastifyInstance, deps: EventStreamDeps): void {
  const open = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
  });

  app.get<{ Querystring: { instanceId?: string } }>('/api/events', async (req, reply) => {
    const store = req.query.instanceId;
    if (store !== undefined && store !== '' && !idSchema.safeParse(store).success) {
      throw new CommandError('INVALID_PAYLOAD', 'instanceId: invalid');
    }
    const pattern = store ? deps.subjects.storeEvents(store) : deps.subjects.allEvents;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    open.add(res);
    const unsubscribe = deps.bus.subscribe(pattern, (msg) => {
      res.write(`event: status\ndata: ${decoder.decode(msg.data)}\n\n`);
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(res);
    });
  });
}
