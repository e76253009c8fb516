/**
 * The composition root: config → logger → database → bus → store shards → providers → runtime, built the same way
 * for `npm start` (serve.ts), the demo, the tests (and their harness) and the benchmarks. Options name only what
 * differs between them.
 */
import type { DestinationStream } from 'pino';
import { loadConfig, redactConfig, type Config } from '../config';
import type { Bus } from '../bus/bus.port';
import { createMemoryBus } from '../bus/memory.bus';
import { eventChannel } from '../bus/event.thread';
import { openBus, type OpenedBus } from '../bus/open';
import type { Db, Database } from '../db/database';
import { openDatabase } from '../db/open';
import { createLogger, type Logger } from '../logger';
import { createProviders, type Providers } from '../providers/providers';
import { createShards } from '../runtime/store.shard';
import type { StatusChange } from '../runtime/supervisor';
import { createRuntime, type Runtime } from './runtime';

/** What differs between the users of the composition root. */
export interface ComposeOptions {
  /** Already loaded (`serve` reports a bad config itself); else read from the environment here. */
  config?: Config;
  /** Where logs go (the demo: a file), under which name (default: the node id); stdout by default. */
  logTo?: { name?: string; destination?: DestinationStream };
  /** Called with the logger as soon as it exists (`serve` hands it to its signal watcher). */
  onLogger?: (log: Logger) => void;
  /** Aborted before anything is opened: nothing is ('stopped before starting'), and the result is undefined. */
  signal?: AbortSignal;
  /**
   * An already-open database (a test's in-memory PGlite, a benchmark's database it also reads itself); else the one
   * the config names. Either way the runtime closes it when it stops.
   */
  database?: Database;
  /** `memory`: the in-process bus whatever `NATS_URL` says (the demo); `configured` by default. */
  bus?: 'configured' | 'memory';
  /** Wraps the bus the runtime publishes on (the harness holds status events back with it). */
  wrapBus?: (bus: Bus) => Bus;
  /**
   * The providers to use, given how to build those the config implies (built only when called): the demo adds
   * latency to them, the harness scripts them, a benchmark may replace them.
   */
  providers?: (configured: () => Providers, ctx: { config: Config; log: Logger }) => Providers;
  onStatusChange?: (change: StatusChange) => void;
  /** How long a stop waits for running provider calls. */
  drainGraceMs?: number;
}

/** A composed process: its config, logger and providers, and the runtime (not started) built from them. */
export interface Composed {
  config: Config;
  log: Logger;
  providers: Providers;
  runtime: Runtime;
}

/** Builds a runtime; undefined only when `opts.signal` was aborted before anything was opened. */
export async function composeRuntime(opts: ComposeOptions & { signal: AbortSignal }): Promise<Composed | undefined>;
export async function composeRuntime(opts?: ComposeOptions): Promise<Composed>;
export async function composeRuntime(opts: ComposeOptions = {}): Promise<Composed | undefined> {
  const config = opts.config ?? loadConfig();
  const log = createLogger(
    config.INKWELL_LOG_LEVEL,
    opts.logTo?.name ?? config.INKWELL_NODE_ID,
    opts.logTo?.destination,
  );
  opts.onLogger?.(log);
  if (opts.signal?.aborted) {
    log.info('stopped before starting');
    return undefined;
  }
  log.info({ config: redactConfig(config) }, 'starting');
  const database = opts.database ?? (await openDatabase(config, log));
  const opened: OpenedBus = opts.bus === 'memory' ? { bus: createMemoryBus() } : await openBus(config, log);
  // The stores this runtime will hold: its provider references are fenced by their leases (owner and epoch), as its
  // blog commits are.
  const shards = createShards({ ttlMs: config.INKWELL_LEASE_TTL_MS, maxPerStore: config.INKWELL_MAX_ACTIVE_PER_STORE });
  const configured = () => createProviders(config, log, { db: database.db, leases: { epochOf: shards.epochOf } });
  const providers = opts.providers?.(configured, { config, log }) ?? configured();
  const runtime = createRuntime({
    config,
    log,
    database,
    bus: opts.wrapBus?.(opened.bus) ?? opened.bus,
    ...(opened.nats ? { nats: opened.nats } : {}),
    providers,
    shards,
    ...(opts.onStatusChange ? { onStatusChange: opts.onStatusChange } : {}),
    ...(opts.drainGraceMs !== undefined ? { drainGraceMs: opts.drainGraceMs } : {}),
    // Events leave from a thread of their own when the runtime is on the configured PostgreSQL and NATS (and no
    // wrapper stands between it and the bus).
    ...(config.DATABASE_URL && config.NATS_URL && !opts.database && opened.nats && !opts.wrapBus
      ? {
          eventThread: {
            databaseUrl: config.DATABASE_URL,
            natsServers: config.NATS_URL,
            name: `inkwell-${config.INKWELL_NODE_ID}-events`,
            prefix: config.INKWELL_SUBJECT_PREFIX,
            channel: eventChannel(),
            logLevel: config.INKWELL_LOG_LEVEL,
          },
        }
      : {}),
  });
  return { config, log, providers, runtime };
}

/**
 * The providers `npm start` would build, for a process that runs no runtime and holds no store leases (the
 * benchmark's polling lifecycle worker): their provider references are kept in `db` unfenced, as a fenced write
 * needs a lease held by its writer.
 */
export function composeLeaselessProviders(config: Config, log: Logger, db: Db): Providers {
  return createProviders(config, log, { db, leases: 'none' });
}
