/**
 * What `/healthz` reports: the services this process runs on that it cannot reach right now. PostgreSQL is asked
 * (a round trip, bounded so a hung server reads as down); NATS and Redis are known from their clients' connection
 * state, which follows their reconnects, so the answer recovers by itself.
 */
import type { InfrastructureService } from '../errors';

/** How each service is checked; a missing one is not used by this process. */
export interface HealthProbes {
  /** Resolves when the database answers. */
  ping: () => Promise<void>;
  /** The bus's connection is up (absent for the in-process bus). */
  busReachable?: () => boolean;
  /** Redis answers the shared limiters (absent without `REDIS_URL`). */
  redisReachable?: () => boolean;
}

const PING_TIMEOUT_MS = 2_000;

/** Resolves with the services that are down now, in a fixed order; empty when all are reachable. */
export async function downServices(probes: HealthProbes): Promise<InfrastructureService[]> {
  const down: InfrastructureService[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('database ping timed out')), PING_TIMEOUT_MS);
  });
  try {
    await Promise.race([probes.ping(), timeout]);
  } catch {
    down.push('postgres');
  } finally {
    clearTimeout(timer);
  }
  if (probes.busReachable?.() === false) down.push('nats');
  if (probes.redisReachable?.() === false) down.push('redis');
  return down;
}
