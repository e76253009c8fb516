/** Where commands come in over NATS: the JetStream streams, made sure of, and the durable command consumer. */
import { startCommandConsumer, type CommandHandler } from '../bus/command.consumer';
import { ensureStreams } from '../bus/jetstream.streams';
import type { NatsBus } from '../bus/nats.bus';
import type { Subjects } from '../bus/subjects';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { OwnershipTimings } from '../runtime/ownership.timing';

/** What the NATS ingress needs. */
export interface NatsIngressDeps {
  nats: NatsBus;
  config: Config;
  subjects: Subjects;
  handler: CommandHandler;
  log: Logger;
  timing: OwnershipTimings;
}

/** Makes sure of the streams (a client may publish the moment we say we are ready), then consumes commands. */
export async function startNatsIngress(deps: NatsIngressDeps): Promise<{ stop(): Promise<void> }> {
  const { nats, config, subjects, handler, log, timing } = deps;
  const names = {
    commands: config.INKWELL_COMMANDS_STREAM,
    events: config.INKWELL_EVENTS_STREAM,
    consumer: `inkwell_${config.INKWELL_SUBJECT_PREFIX.replace(/\./g, '_')}`,
  };
  await ensureStreams(nats.nc, names, subjects, timing.ackWaitMs);
  return startCommandConsumer({ bus: nats, names, subjects, handler, log, timing });
}
