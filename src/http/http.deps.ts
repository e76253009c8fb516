/** What the HTTP server and its route modules need (a file of its own, so the routes need not import the server). */
import type { OutboxRepo } from '../db/outbox.repo';
import type { Bulk } from '../intake/bulk';
import type { Intake } from '../intake/intake';
import type { Logger } from '../logger';
import type { Fleet } from '../runtime/fleet.registry';
import type { EventStreamDeps } from './events.sse';
import type { HealthProbes } from './health';
import type { ReplicateHookDeps } from './hooks.routes';
import type { Metrics } from './metrics';
import type { UsageDeps } from './usage.routes';

/** What the HTTP server needs. */
export interface HttpDeps {
  intake: Intake;
  /** Bulk retry and cancel (`POST /api/blogs/bulk/...`). */
  bulk?: Bulk;
  log: Logger;
  /** Resolves when the database answers; `/healthz` fails otherwise. */
  ping: () => Promise<void>;
  /** True while the process drains: `/healthz` says so and commands are refused, so work goes elsewhere. */
  draining?: () => boolean;
  /** Connection state of NATS and Redis, for `/healthz` (see health.ts). */
  health?: Omit<HealthProbes, 'ping'>;
  apiToken?: string;
  /** `POST /hooks/replicate`, when a webhook secret is configured. */
  replicateHook?: ReplicateHookDeps;
  /** Metrics, dashboard, event stream and timeline: registered when the runtime provides them. */
  observe?: { metrics: Metrics; fleet: Fleet; outbox: OutboxRepo } & EventStreamDeps;
  /** Spend per store and day (`GET /api/stores/:instanceId/usage`). */
  usage?: UsageDeps;
}
