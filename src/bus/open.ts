/** Opens the bus the configuration names: NATS when `NATS_URL` is set, else the in-process bus. */
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Bus } from './bus.port';
import { createMemoryBus } from './memory.bus';
import { connectNatsBus } from './nats.bus';

/** Connects (NATS) or creates (in-process) the bus. */
export async function openBus(config: Config, log: Logger): Promise<Bus> {
  if (!config.NATS_URL) {
    log.info('NATS_URL is not set: in-process bus; HTTP is the only way in');
    return createMemoryBus();
  }
  return connectNatsBus(config.NATS_URL, `inkwell-${config.INKWELL_NODE_ID}`, log);
}
