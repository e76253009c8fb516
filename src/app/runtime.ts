/**
 * One Inkwell process: database, providers, supervisor, intake and HTTP wired together, with a start
 * (migrate, rehydrate, listen) and a graceful stop (stop intake, let running calls finish briefly, persist).
 */
import type { AddressInfo } from 'node:net';
import { blogMachine } from '../../machines/blog.machine';
import { createBlogActors } from '../actors/blog.actors';
import { traceProviders } from '../telemetry/spans';
import { startTracing } from '../telemetry/tracing';
import type { Config } from '../config';
import { createBlogRepo } from '../db/blog.repo';
import type { Database } from '../db/database';
import { createHttpServer } from '../http/server';
import { createIntake } from '../intake/intake';
import { createBulk } from '../intake/bulk';
import { createBulkRepo } from '../db/bulk.repo';
import { createRetentionRepo } from '../db/retention.repo';
import { createRetention } from '../runtime/retention';
import { createForwarder } from '../bus/forwarder';
import { createLeaseRepo } from '../db/lease.repo';
import { createLeaseManager } from '../runtime/leases';
import { ownershipTimings } from '../runtime/ownership.timing';
import type { Logger } from '../logger';
import type { Providers } from '../providers/providers';
import type { Bus } from '../bus/bus.port';
import { createCommandHandler } from '../bus/command.consumer';
import type { NatsBus } from '../bus/nats.bus';
import { createMemoryBus } from '../bus/memory.bus';
import { createEventPath } from '../bus/event.path';
import type { EventThreadData } from '../bus/event.thread';
import { subjectsFor } from '../bus/subjects';
import { createOutboxRepo } from '../db/outbox.repo';
import { createMetrics } from '../http/metrics';
import { createFleet } from '../runtime/fleet.registry';
import { createInspector } from '../runtime/inspector';
import { createPersister } from '../runtime/persister';
import { guardLimiters, type Shards } from '../runtime/store.shard';
import { createUsageRepo } from '../db/usage.repo';
import { createUsageLedger } from '../runtime/usage.ledger';
import { createStoreBudget } from '../runtime/store.budget';
import { createSupervisor, type StatusChange } from '../runtime/supervisor';
import { logInfrastructureWait, logStageFailure, statusChangeLogger } from './runtime.logs';
import { needsAuthor, pricesOf, settingsOf } from './settings';
import { relayReplicateHooks } from './hooks.relay';
import { startNatsIngress } from './nats.ingress';

/** What a runtime is built from; everything with I/O comes in from the composition root. */
export interface RuntimeDeps {
  config: Config;
  log: Logger;
  database: Database;
  providers: Providers;
  /** NATS (commands in through JetStream, events out) or, by default, the in-process bus (events only). */
  bus?: Bus;
  /**
   * The NATS adapter behind `bus`, when it is one (`openBus` gives both): the JetStream command consumer and the
   * forwarder need its connection. Without it, commands come in through HTTP only.
   */
  nats?: NatsBus;
  onStatusChange?: (change: StatusChange) => void;
  /** The stores it will hold (the composition root makes them, to fence the providers' references too). */
  shards: Shards;
  /** How long a stop waits for running provider calls before leaving them to be repeated. */
  drainGraceMs?: number;
  /**
   * The events thread (`event.thread.ts`), given when the runtime runs on PostgreSQL and NATS: status events leave
   * from a thread of their own as their commits land. Without it they leave from this thread.
   */
  eventThread?: EventThreadData;
}

/** Creates a runtime; nothing runs until `start()`. */
export function createRuntime(deps: RuntimeDeps) {
  const { config, log, database, nats } = deps;
  const bus: Bus = deps.bus ?? nats ?? createMemoryBus();
  const nodeId = config.INKWELL_NODE_ID;
  // The stores held here (each with its lease epoch, slots, actors, write and command queues): every write of their
  // blogs is fenced by the lease's owner and epoch.
  const { shards } = deps;
  // With the events thread, the repository announces its outbox rows on the thread's channel.
  const repo = createBlogRepo(database.db, { owner: nodeId, epochOf: shards.epochOf }, deps.eventThread?.channel);
  // No provider call starts for a store whose lease has run out by our clock; a lost store's queued calls are dropped.
  guardLimiters(shards, deps.providers.limiters ?? []);
  const subjects = subjectsFor(config.INKWELL_SUBJECT_PREFIX);
  const outbox = createOutboxRepo(database.db);
  const fleet = createFleet();
  const metrics = createMetrics({
    fleet,
    outboxBacklog: () => outbox.backlog(),
    liveActors: () => supervisor.size(),
  });
  const unfollowLimiters = deps.providers.onLimiterEvent?.((e, queued) => {
    fleet.setLimiterQueue(e.name, queued);
    if (e.kind === 'started' && e.waitMs !== undefined) metrics.observeLimiterWait(e.name, e.waitMs / 1000);
  });
  // Events leave right after their commit (from the events thread when there is one); the relay is the guarantee.
  const observe = metrics.observeEventPublish;
  const events = createEventPath({ outbox, bus, subjects, log, observe, thread: deps.eventThread });
  const { committed } = events; // the direct publisher on this thread, told of each commit (none with the thread)
  let inFlight = 0;
  const persister = createPersister(repo, {
    onConflict: (blogId) => log.warn({ blogId }, 'blog changed by another writer; dropped here'),
    onRetry: (err, attempt) => log.error({ err, attempt }, 'persisting transitions failed; retrying'),
    onCommit: (size, ms, events) => log.debug({ size, ms, events }, 'committed transitions'),
    ...(committed ? { onCommitted: committed } : {}),
  });
  const tracing = startTracing(config, log); // a no-op without OTEL_EXPORTER_OTLP_ENDPOINT
  const ledger = createUsageLedger(createUsageRepo(database.db), log);
  const budget = createStoreBudget({ dailyTokens: config.INKWELL_STORE_DAILY_TOKENS, ledger });
  const actors = createBlogActors({
    ...(config.OTEL_EXPORTER_OTLP_ENDPOINT ? traceProviders(deps.providers) : deps.providers),
    slots: shards.slots,
    committed: (blogId, instanceId) => supervisor.committed(blogId, instanceId),
    budget,
    onUsage: (stage, owner, usage) => {
      metrics.observeUsage(stage, usage);
      ledger.record(owner.instanceId, usage);
    },
    onCall: (stage, phase, failure, owner) => {
      inFlight += phase === 'start' ? 1 : -1;
      fleet.recordCall(stage, phase, owner, failure);
      if (failure) logStageFailure(log, stage, failure, owner);
    },
    onInfrastructureWait: (stage, err, owner) => logInfrastructureWait(log, stage, err, owner),
  });
  const inspector = createInspector(config.INKWELL_INSPECT, log);
  const logStatusChange = statusChangeLogger(log);
  const supervisor = createSupervisor({
    machine: blogMachine.provide({ actors }),
    ...(inspector.inspect ? { inspect: inspector.inspect } : {}),
    repo,
    persister,
    shards,
    log,
    leaseValid: shards.leaseValid,
    ...(committed ? { onInserted: (event) => committed([event]) } : {}),
    onStatusChange: (change) => {
      logStatusChange(change);
      fleet.recordStatusChange(change);
      deps.onStatusChange?.(change);
    },
  });
  const timing = ownershipTimings(config.INKWELL_LEASE_TTL_MS);
  const leases = createLeaseManager({
    repo: createLeaseRepo(database.db, nodeId, config.INKWELL_LEASE_TTL_MS),
    supervisor,
    log,
    ttlMs: config.INKWELL_LEASE_TTL_MS,
    shards,
    onChange: (held) => metrics.setLeasesHeld(held),
  });
  const forwarder = nats
    ? createForwarder(nats.nc, config.INKWELL_SUBJECT_PREFIX, nodeId, log, timing.forwardTimeoutMs)
    : undefined;
  // Commands run in their store's shard here, or at its owner; a dead owner's stores free up within the lease TTL,
  // and commands for them wait that long (plus a margin, `routerWaitMs`) for it.
  const intake = createIntake({
    supervisor,
    repo,
    settings: settingsOf(config),
    requireAuthorMemberId: needsAuthor(config),
    whyWaiting: budget.blocked,
    route: shards.route,
    ...(forwarder ? { forward: forwarder.forward.bind(forwarder) } : {}),
  });
  let draining = false;
  const hooks = relayReplicateHooks(bus, config.INKWELL_SUBJECT_PREFIX, deps.providers.replicateHooks, log);
  const retention = createRetention({
    repo: createRetentionRepo(database.db),
    log,
    days: config.INKWELL_RETENTION_DAYS,
    onPruned: (counts) => metrics.countPruned({ ...counts }),
  });
  const bulk = createBulk({
    intake,
    repo: createBulkRepo(database.db),
    log,
    onOutcome: (name, outcome) => metrics.countBulk(name, outcome),
  });
  const http = createHttpServer({
    intake,
    bulk,
    log,
    ping: () => database.ping(),
    draining: () => draining,
    health: {
      ...(bus.reachable ? { busReachable: () => bus.reachable?.() ?? true } : {}),
      ...(deps.providers.limiters?.length
        ? { redisReachable: () => (deps.providers.limiters ?? []).every((l) => l.reachable()) }
        : {}),
    },
    observe: { metrics, fleet, outbox, bus, subjects },
    ...(config.INKWELL_API_TOKEN ? { apiToken: config.INKWELL_API_TOKEN } : {}),
    ...(hooks ? { replicateHook: { secret: hooks.secret, log, onPrediction: hooks.send } } : {}),
    usage: { days: (id, from, to) => ledger.days(id, from, to), prices: pricesOf(config) },
  });
  const handler = createCommandHandler({ intake, bus, subjects, log });
  let consumer: { stop(): Promise<void> } | undefined;
  let unserve: (() => void) | undefined;
  let stopping: Promise<void> | undefined;

  async function waitForCalls(graceMs: number) {
    const deadline = Date.now() + graceMs;
    while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  return {
    intake,
    supervisor,
    /** The stores held here (each one's lease epoch, slots, actors and queues). */
    shards,
    repo,
    http,
    bus,
    subjects,
    /** Aggregates for metrics and the dashboard; limiters feed their queue depth with `fleet.setLimiterQueue`. */
    fleet,
    /** Prometheus registry and the hooks for limiter waits and leases held. */
    metrics,
    /** Prunes ended blogs past `INKWELL_RETENTION_DAYS` (also scheduled every 10 minutes after start). */
    retention,
    /**
     * Migrates, rehydrates and listens; resolves with the HTTP port. Once `stop` is aborted it goes no further than
     * the phase it is in (port 0): the caller's `stop()` then closes what was opened.
     */
    async start(listen = true, stop?: AbortSignal): Promise<{ port: number; restored: number; quarantined: number }> {
      const halted = { port: 0, restored: 0, quarantined: 0 };
      if (stop?.aborted) return halted;
      const eventsReady = events.start(); // the events thread boots beside the migration; it listens before any commit
      await database.migrate();
      await database.warm?.();
      fleet.seed(await repo.countByStatus());
      await eventsReady;
      if (stop?.aborted) return halted;
      const started = Date.now();
      // Takes every store nobody live holds, rehydrating its working blogs (waiting ones stay on disk).
      await leases.start();
      const restored = supervisor.size();
      const quarantined = await repo.countQuarantined();
      log.info({ restored, quarantined, stores: leases.held(), ms: Date.now() - started }, 'rehydrated working blogs');
      if (stop?.aborted) return { ...halted, restored, quarantined };
      const unserveForwarded = forwarder?.serve((name, body, opts) => intake.apply(name, body, opts));
      // A peer that stops gracefully says so: take its stores now rather than when its leases expire.
      const unfollow = bus.subscribe(`${config.INKWELL_SUBJECT_PREFIX}.nodes.released`, () => leases.kick());
      unserve = () => (unserveForwarded?.(), unfollow());
      events.relay.start();
      retention.start();
      ledger.start();
      if (nats) consumer = await startNatsIngress({ nats, config, subjects, handler, log, timing });
      if (!listen || stop?.aborted) return { port: 0, restored, quarantined };
      if (!config.INKWELL_API_TOKEN && !['127.0.0.1', 'localhost', '::1'].includes(config.HOST)) {
        log.warn(
          { host: config.HOST },
          'INKWELL_API_TOKEN is not set and HTTP is bound beyond loopback: the API is open',
        );
      }
      await http.listen({ port: config.PORT, host: config.HOST });
      const port = (http.server.address() as AddressInfo).port;
      log.info({ port, host: config.HOST }, 'listening');
      return { port, restored, quarantined };
    },
    /**
     * Graceful stop; safe to call more than once. HTTP stays up until the stores are handed over, saying it drains
     * (`/healthz` 503, commands 503) so a load balancer moves on; it closes before what its reads need.
     */
    stop(): Promise<void> {
      stopping ??= (async () => {
        draining = true;
        await consumer?.stop();
        unserve?.();
        await retention.stop();
        await leases.stop();
        await waitForCalls(deps.drainGraceMs ?? 5_000); // image stages may still hear their webhook meanwhile
        await supervisor.stopAll();
        hooks?.stop();
        await ledger.stop();
        unfollowLimiters?.();
        await Promise.all((deps.providers.limiters ?? []).map((l) => l.stop()));
        await Promise.all((deps.providers.closers ?? []).map((close) => close()));
        // Hand the stores over at once: the next process (or a peer's next tick) takes them.
        await leases
          .release()
          .then(() => bus.publish(`${config.INKWELL_SUBJECT_PREFIX}.nodes.released`, { nodeId }))
          .catch((err: unknown) => log.warn({ err }, 'releasing store leases failed'));
        await http.close();
        inspector.stop();
        await events.stop();
        await bus.close();
        await database.close();
        await tracing.shutdown();
      })();
      return stopping;
    },
  };
}

/** A runtime's interface. */
export type Runtime = ReturnType<typeof createRuntime>;
