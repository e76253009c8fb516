/** Opens the bus the configuration names: NATS when `NATS_URL` is set, else the in-process bus. */
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import { createMemoryBus } from './memory.bus';
import { connectNatsBus, type NatsBus } from './nats.bus';

/** The bus, and its NATS adapter when it is one: JetStream commands and forwarding need that connection. */
export interface OpenedBus {
  bus: Bus;
  nats?: NatsBus;
}

/** Connects (NATS) or creates (in-process) the bus. */
export async function openBus(config: Config, log: Logger): Promise<OpenedBus> {
  if (!config.NATS_URL) {
    log.info('NATS_URL is not set: in-process bus; HTTP is the only way in');
    return { bus: createMemoryBus() };
  }
  const nats = await connectNatsBus(config.NATS_URL, `inkwell-${config.INKWELL_NODE_ID}`, log);
  return { bus: nats, nats };
}
