/** The NATS adapter of the bus: one connection that reconnects forever; events go through JetStream. */
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '../logger';
import { encodeJson, type Bus } from './bus.port';

/** The NATS bus, with the connection the JetStream parts need. */
export interface NatsBus extends Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
}

/** Connects to `servers`; a lost connection is retried forever and reported in the log. */
export async function connectNatsBus(servers: string[], name: string, log: Logger): Promise<NatsBus> {
  // noAsyncTraces: a request (every JetStream publish) does not capture a stack trace up front for its error, if any.
  const nc = await connect({
    servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    timeout: 10_000,
    noAsyncTraces: true,
  });
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type }, `nats ${s.type}`);
      if (s.type === 'disconnect') connected = false;
      if (s.type === 'reconnect') connected = true;
    }
  })().catch(() => undefined);
  const js = jetstream(nc, { timeout: 10_000 });
  return {
    kind: 'nats',
    nc,
    js,
    async publish(subject, payload, opts = {}) {
      if (!opts.durable) {
        nc.publish(subject, encodeJson(payload));
        return;
      }
      const h = headers();
      if (opts.msgId) h.set('Nats-Msg-Id', opts.msgId);
      await js.publish(subject, encodeJson(payload), { headers: h });
    },
    subscribe(pattern, handler) {
      const sub = nc.subscribe(pattern, {
        callback: (err, msg) => {
          if (!err) handler({ subject: msg.subject, data: msg.data });
        },
      });
      return () => sub.unsubscribe();
    },
    reachable: () => connected && !nc.isClosed(),
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}
