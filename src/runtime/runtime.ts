/**
 * One Inkwell process: database, providers, supervisor, intake and HTTP wired together, with a start
 * (migrate, rehydrate, listen) and a graceful stop (stop intake, let running calls finish briefly, persist).
 */
import type { AddressInfo } from 'node:net';
import { blogMachine } from '../../machines/blog.machine';
import type { BlogSettings } from '../../machines/blog.types';
import { createBlogActors } from '../actors/blog.actors';
import type { Config } from '../config';
import { createBlogRepo } from '../db/blog.repo';
import type { Database } from '../db/database';
import { createHttpServer } from '../http/server';
import { createIntake } from '../intake/intake';
import type { Logger } from '../logger';
import type { Providers } from '../providers/providers';
import type { Bus } from '../bus/bus.port';
import { createCommandHandler } from '../bus/command.handler';
import { startCommandConsumer } from '../bus/command.consumer';
import type { NatsBus } from '../bus/nats.bus';
import { createMemoryBus } from '../bus/memory.bus';
import { createOutboxRelay } from '../bus/outbox.relay';
import { subjectsFor } from '../bus/subjects';
import { createOutboxRepo } from '../db/outbox.repo';
import { createPersister } from './persister';
import { createStoreSlots } from './store.slots';
import { createSupervisor, type StatusChange } from './supervisor';

/** What a runtime is built from; everything with I/O comes in from the composition root. */
export interface RuntimeDeps {
  config: Config;
  log: Logger;
  database: Database;
  providers: Providers;
  /** NATS (commands in through JetStream, events out) or, by default, the in-process bus (events only). */
  bus?: Bus;
  onStatusChange?: (change: StatusChange) => void;
  /** How long a stop waits for running provider calls before leaving them to be repeated. */
  drainGraceMs?: number;
}

/** The blog settings a config implies. */
export function settingsOf(config: Config): BlogSettings {
  return {
    maxAttempts: config.INKWELL_MAX_ATTEMPTS,
    retryBaseMs: config.INKWELL_RETRY_BASE_MS,
    selectionTimeoutMs: config.INKWELL_SELECTION_TIMEOUT_MS,
  };
}

/** Creates a runtime; nothing runs until `start()`. */
export function createRuntime(deps: RuntimeDeps) {
  const { config, log, database } = deps;
  const bus: Bus = deps.bus ?? createMemoryBus();
  const repo = createBlogRepo(database.db);
  const slots = createStoreSlots(config.INKWELL_MAX_ACTIVE_PER_STORE);
  const subjects = subjectsFor(config.INKWELL_SUBJECT_PREFIX);
  const relay = createOutboxRelay({ repo: createOutboxRepo(database.db), bus, subjects, log });
  let inFlight = 0;
  const persister = createPersister(repo, {
    onConflict: (blogId) => log.warn({ blogId }, 'blog changed by another writer; dropped here'),
    onRetry: (err, attempt) => log.error({ err, attempt }, 'persisting transitions failed; retrying'),
    onCommit: (size, ms) => {
      log.debug({ size, ms }, 'committed transitions');
      relay.kick();
    },
  });
  const actors = createBlogActors({
    ...deps.providers,
    slots,
    onCall: (stage, phase, error) => {
      inFlight += phase === 'start' ? 1 : -1;
      if (error)
        log.warn({ stage, code: error.code, retryable: error.retryable }, `stage ${stage} failed: ${error.message}`);
    },
  });
  const supervisor = createSupervisor({
    machine: blogMachine.provide({ actors }),
    repo,
    persister,
    slots,
    log,
    onInserted: () => relay.kick(),
    onStatusChange: (change) => {
      log.info(
        { blogId: change.blogId, instanceId: change.instanceId, status: change.status, seq: change.seq },
        `blog ${change.previousStatus ?? 'NEW'} -> ${change.status}`,
      );
      deps.onStatusChange?.(change);
    },
  });
  const intake = createIntake({ supervisor, repo, settings: settingsOf(config) });
  const http = createHttpServer({
    intake,
    log,
    ping: () => database.ping(),
    ...(config.INKWELL_API_TOKEN ? { apiToken: config.INKWELL_API_TOKEN } : {}),
  });
  const handler = createCommandHandler({ intake, bus, subjects, log });
  let consumer: { stop(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;

  async function waitForCalls(graceMs: number) {
    const deadline = Date.now() + graceMs;
    while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  return {
    intake,
    supervisor,
    repo,
    http,
    bus,
    subjects,
    /** Migrates, rehydrates and listens; resolves with the HTTP port. */
    async start(listen = true): Promise<{ port: number; restored: number; quarantined: number }> {
      await database.migrate();
      const started = Date.now();
      const { restored, quarantined } = await supervisor.rehydrate();
      log.info({ restored, quarantined, ms: Date.now() - started }, 'rehydrated working blogs');
      relay.start();
      if (bus.kind === 'nats') {
        consumer = startCommandConsumer({
          bus: bus as NatsBus,
          names: {
            commands: config.INKWELL_COMMANDS_STREAM,
            events: config.INKWELL_EVENTS_STREAM,
            consumer: `inkwell_${config.INKWELL_SUBJECT_PREFIX.replace(/\./g, '_')}`,
          },
          subjects,
          handler,
          log,
        });
      }
      if (!listen) return { port: 0, restored, quarantined };
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
    /** Graceful stop; safe to call more than once. */
    stop(): Promise<void> {
      stopping ??= (async () => {
        await consumer?.stop();
        await http.close();
        await waitForCalls(deps.drainGraceMs ?? 5_000);
        await supervisor.stopAll();
        await relay.stop();
        await bus.close();
        await database.close();
      })();
      return stopping;
    },
  };
}

/** A runtime's interface. */
export type Runtime = ReturnType<typeof createRuntime>;
