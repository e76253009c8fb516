/**
 * Replicate webhooks between processes: a verified webhook may reach any process; it goes out on the bus, and the
 * process whose image stage waits for that prediction takes it.
 */
import type { Bus } from '../bus/bus.port';
import type { Logger } from '../logger';
import type { Providers } from '../providers/providers';
import type { WebhookPrediction } from '../providers/replicate.webhooks';

/** The relay: `send` puts a verified prediction on the bus; `stop` stops listening. */
export interface HooksRelay {
  secret: string;
  send: (prediction: unknown) => void;
  stop(): void;
}

/** Follows relayed webhooks when the providers take them (webhooks configured); else undefined. */
export function relayReplicateHooks(
  bus: Bus,
  prefix: string,
  hooks: Providers['replicateHooks'],
  log: Logger,
): HooksRelay | undefined {
  if (!hooks) return undefined;
  const subject = `${prefix}.hooks.replicate`;
  const stop = bus.subscribe(subject, (msg) => {
    try {
      hooks.waiters.deliver(JSON.parse(new TextDecoder().decode(msg.data)) as WebhookPrediction);
    } catch (err) {
      log.warn({ err }, 'a relayed Replicate webhook could not be read');
    }
  });
  return { secret: hooks.secret, send: (prediction) => void bus.publish(subject, prediction), stop };
}
