/**
 * The supervisor: one live XState actor per working blog. It creates and rehydrates actors, persists every
 * transition (snapshot, status, seq and outbox event in one transaction, through the persister), hands
 * commands to the right actor, and lets idle blogs (final, failed) leave memory.
 */
import DataLoader from 'dataloader';
import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { BLOG_MACHINE_VERSION, type BlogEvent, type BlogInput, type BlogMachine } from '../../machines/blog.machine';
import { migrateSnapshot } from '../../machines/blog.migrations';
import { IDLE_STATUSES, WORKING_STATUSES, type BlogStatus } from '../../machines/blog.types';
import type { BlogRepo, BlogRow } from '../db/blog.port';
import { LeaseExpiredError, SnapshotError } from '../errors';
import type { Logger } from '../logger';
import { eventPayload, publicFields, statusOf, wakeAtOf, type BlogView } from './blog.view';
import type { CommittedEvent, Persister } from './persister';
import {
  interleaveByStore,
  sameState,
  sendOrRefuse,
  type LiveBlog,
  type Observed,
  type StatusChange,
  type Supervisor,
} from './live.blog';
import type { Shards } from './store.shard';

/** What the supervisor needs. */
export interface SupervisorDeps {
  machine: BlogMachine;
  repo: BlogRepo;
  persister: Persister;
  /** The held stores: each one's live actors and working slots are on its shard. */
  shards: Shards;
  log: Logger;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  onStatusChange?: (change: StatusChange) => void;
  /** Called after a new blog's first row and event are committed, with that event. */
  onInserted?: (event: CommittedEvent) => void;
  /** Whether this process's lease on the store has not run out by its own clock (checked before publishing). */
  leaseValid?: (instanceId: string) => boolean;
  now?: () => number;
}

const noop = () => undefined;
/** The persisted form of `snapshot`, made only when called (returned: tsx names no property on it per call). */
const serializeLater = (machine: BlogMachine, snapshot: Observed) => () =>
  machine.getPersistedSnapshot(snapshot as never);

/** Creates the supervisor. */
export function createSupervisor(deps: SupervisorDeps): Supervisor {
  const { shards } = deps;
  const slots = shards.slots;
  /** The live actor of `blogId` of store `instanceId`, on the store's shard. */
  const liveOf = (blogId: string, instanceId: string) => shards.get(instanceId)?.actors.get(blogId);
  const now = deps.now ?? Date.now;
  // A lost store's writes still queued are refused there and then: they were its tenure's, and it is over.
  shards.onLost((instanceId) => {
    const shard = shards.get(instanceId);
    if (shard) deps.persister.close(shard.writes);
  });
  /**
   * Rows of passivated blogs: the loads asked for in one turn of the event loop share one query. At a steady rate
   * that is one row a query; after a stall, the commands that piled up meanwhile cost one round trip, not one each.
   */
  const rows = new DataLoader<string, BlogRow | undefined>(
    async (blogIds) => {
      const found = new Map((await deps.repo.getMany(blogIds)).map((row) => [row.blogId, row]));
      return blogIds.map((id) => found.get(id));
    },
    { cache: false, maxBatchSize: 500, batchScheduleFn: (run) => setImmediate(run) },
  );

  function persist(entry: LiveBlog, snapshot: Observed) {
    const last = entry.lastSnapshot;
    if (last && (snapshot === last || sameState(snapshot, last))) return;
    entry.lastSnapshot = snapshot;
    const status = statusOf(snapshot.value);
    const previous = entry.status;
    const events = [];
    if (status !== previous) {
      entry.seq += 1;
      entry.status = status;
      events.push({
        seq: entry.seq,
        payload: eventPayload(snapshot.context, status, previous, entry.seq, new Date(now())),
      });
      // A slot is held in a working status; in PENDING it may have just been granted to the admission that is
      // about to move the blog into its stage (granted before this snapshot is observed): it is not given back.
      if (!WORKING_STATUSES.includes(status) && status !== 'PENDING') slots.release(entry.blogId);
      deps.onStatusChange?.({
        blogId: entry.blogId,
        instanceId: entry.instanceId,
        status,
        previousStatus: previous,
        seq: entry.seq,
        context: snapshot.context,
      });
    }
    const write = {
      blogId: entry.blogId,
      instanceId: entry.instanceId,
      status,
      seq: entry.seq,
      // Serialized when the batch is built, and only if no later transition replaced this write by then.
      snapshot: serializeLater(deps.machine, snapshot),
      machineVersion: BLOG_MACHINE_VERSION,
      view: publicFields(status, snapshot.context) as Record<string, unknown>,
      wakeAt: wakeAtOf(status, snapshot.value, snapshot.context),
    };
    entry.lastCommit = deps.persister.enqueue(write, events, entry.writes);
    entry.lastCommit.then(
      () => {
        // An idle blog leaves memory once committed: a command (or its timeout's sweep) loads it when needed.
        if (IDLE_STATUSES.includes(status) && isLive(entry) && entry.status === status) drop(entry);
      },
      () => drop(entry), // another writer owns the row now
    );
  }

  const isLive = (entry: LiveBlog) => liveOf(entry.blogId, entry.instanceId) === entry;

  function drop(entry: LiveBlog) {
    if (isLive(entry)) shards.get(entry.instanceId)?.actors.delete(entry.blogId);
    entry.unsubscribe();
    entry.actor.stop();
    slots.release(entry.blogId);
    deps.persister.forget(entry.blogId);
  }

  function attach(
    actor: Actor<BlogMachine>,
    row: { blogId: string; instanceId: string; status: string; seq: number; createdAt: Date },
  ) {
    const shard = shards.place(row.instanceId);
    const entry: LiveBlog = {
      actor,
      blogId: row.blogId,
      instanceId: row.instanceId,
      status: row.status as BlogStatus,
      seq: row.seq,
      createdAt: row.createdAt,
      lastSnapshot: actor.getSnapshot(),
      lastCommit: Promise.resolve(),
      writes: shard.writes,
      unsubscribe: noop,
    };
    // Listeners passed as arguments, not as named properties: tsx (esbuild keepNames) would define a `name` on each
    // new closure, for every blog.
    const sub = actor.subscribe(
      (snapshot) => persist(entry, snapshot),
      (err) => {
        deps.log.error({ blogId: entry.blogId, instanceId: entry.instanceId, err }, 'blog actor crashed; quarantined');
        void deps.repo.quarantine(entry.blogId, entry.instanceId, `actor error: ${String(err)}`).catch(() => undefined);
        drop(entry);
      },
    );
    entry.unsubscribe = () => sub.unsubscribe();
    shard.actors.set(row.blogId, entry);
    return entry;
  }

  /** Restores a stored blog; quarantines it (and returns undefined) when its snapshot cannot be restored. */
  async function restore(row: BlogRow): Promise<LiveBlog | undefined> {
    const shard = shards.place(row.instanceId); // not held here (any more): refused, retryably, before any change
    try {
      const snapshot = migrateSnapshot(row.snapshot, row.machineVersion, BLOG_MACHINE_VERSION);
      const actor = createActor(deps.machine, {
        snapshot: snapshot as never,
        input: undefined,
        ...(deps.inspect ? { inspect: deps.inspect } : {}),
      });
      if (actor.getSnapshot().status === 'error') throw new SnapshotError('the snapshot restores to an error state');
      deps.persister.track(row.blogId, row.version);
      // The restored state decides, not the row: a migrated `admitting` snapshot waits for its slot in PENDING.
      if (WORKING_STATUSES.includes(statusOf(actor.getSnapshot().value))) slots.hold(row.instanceId, row.blogId);
      const entry = attach(actor, row);
      actor.start();
      return entry;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      deps.log.error(
        { blogId: row.blogId, instanceId: row.instanceId, err },
        'snapshot cannot be restored; quarantined',
      );
      shard.actors.delete(row.blogId);
      await deps.repo.quarantine(row.blogId, row.instanceId, reason);
      return undefined;
    }
  }

  return {
    /** Creates and starts a blog; `created: false` (and nothing changes) when the id exists already. */
    async create(input: BlogInput, createdAt = new Date(now())): Promise<{ created: boolean; createdAt: Date }> {
      const shard = shards.place(input.instanceId); // a store not held here: refused before the insert
      const actor = createActor(deps.machine, { input, ...(deps.inspect ? { inspect: deps.inspect } : {}) });
      const context = actor.getSnapshot().context;
      const event = { seq: 1, payload: eventPayload(context, 'PENDING', null, 1, createdAt) };
      const created = await deps.persister.insert({
        blogId: input.blogId,
        instanceId: input.instanceId,
        status: 'PENDING',
        snapshot: actor.getPersistedSnapshot(),
        machineVersion: BLOG_MACHINE_VERSION,
        view: {},
        event,
        createdAt,
        ...(shard.writes.epoch !== undefined ? { epoch: shard.writes.epoch } : {}),
      });
      if (!created || liveOf(input.blogId, input.instanceId)) return { created: false, createdAt };
      deps.onInserted?.({ ...event, blogId: input.blogId, instanceId: input.instanceId });
      deps.persister.track(input.blogId, 0);
      attach(actor, { ...input, status: 'PENDING', seq: 1, createdAt });
      deps.onStatusChange?.({ ...input, status: 'PENDING', previousStatus: null, seq: 1, context });
      actor.start();
      return { created: true, createdAt };
    },

    /** Restores stores' working blogs that are not live here (their leases were just taken); counts per store. */
    async rehydrateStores(instanceIds: string[]): Promise<Map<string, number>> {
      const restored = new Map<string, number>();
      for (const row of interleaveByStore(await deps.repo.loadWorking(instanceIds))) {
        if (!liveOf(row.blogId, row.instanceId) && (await restore(row))) {
          restored.set(row.instanceId, (restored.get(row.instanceId) ?? 0) + 1);
        }
      }
      return restored;
    },

    /** Drops a store's actors without persisting anything: its lease is lost, another process continues. */
    dropStore(instanceId: string): number {
      const entries = [...(shards.get(instanceId)?.actors.values() ?? [])];
      entries.forEach(drop);
      return entries.length;
    },

    /**
     * The live actor of a blog of `instanceId` (without it: of the blog's store), loading it from the database when
     * it was passivated; refused (retryably) when the store is not held here.
     */
    async load(blogId: string, instanceId?: string): Promise<LiveBlog | undefined> {
      const storeId = instanceId ?? (await rows.load(blogId))?.instanceId;
      if (storeId === undefined) return undefined;
      const shard = shards.place(storeId);
      const existing = shard.actors.get(blogId);
      if (existing) return existing;
      const pending = shard.loading.get(blogId);
      if (pending) return pending;
      const promise = (async () => {
        const row = await rows.load(blogId);
        // Another store's blog is never restored here: its store's lease is not ours to use.
        if (!row || row.quarantinedAt || row.instanceId !== storeId) return undefined;
        // An ended blog pruned by retention has no snapshot left to restore (the intake answers from its status).
        if (row.prunedAt) return undefined;
        return shard.actors.get(blogId) ?? (await restore(row));
      })().finally(() => shard.loading.delete(blogId));
      shard.loading.set(blogId, promise);
      return promise;
    },

    /**
     * Sends an event to a loaded blog; resolves, once the transition it caused is committed, with the blog as that
     * transition left it (no second read: the view is what was just committed). With `refuse` (a command), an event
     * the machine does not take throws the contract's CommandError instead (`sendOrRefuse`).
     */
    async send(entry: LiveBlog, event: BlogEvent, refuse = false): Promise<BlogView> {
      if (refuse) sendOrRefuse(entry, event);
      else entry.actor.send(event);
      const { status, seq } = entry;
      const fields = publicFields(status, entry.actor.getSnapshot().context);
      await entry.lastCommit;
      const { blogId, instanceId, createdAt } = entry;
      const at = new Date(now()).toISOString();
      return { blogId, instanceId, status, seq, ...fields, createdAt: createdAt.toISOString(), updatedAt: at };
    },

    /** Resolves once `blogId`'s transitions so far are committed; rejects if it is not (or no longer) live here. */
    async committed(blogId: string, instanceId: string): Promise<void> {
      await new Promise((resolve) => setImmediate(resolve)); // a stage starts before its transition is queued
      const entry = liveOf(blogId, instanceId);
      await entry?.lastCommit;
      if (!entry || !isLive(entry)) throw new Error(`blog ${blogId} is not live here: write refused`);
      if (deps.leaseValid && !deps.leaseValid(entry.instanceId)) throw new LeaseExpiredError(entry.instanceId);
    },

    /** Waits until every transition observed so far is committed. */
    flush: () => deps.persister.flush(),

    /** Stops every actor without persisting the stop: in-flight work is re-run after a restore. */
    async stopAll(): Promise<void> {
      await deps.persister.flush();
      for (const shard of shards.all()) [...shard.actors.values()].forEach(drop);
      await deps.persister.flush();
    },

    /** LiveBlog actors now. */
    size: () => shards.all().reduce((n, shard) => n + shard.actors.size, 0),
  };
}

export { interleaveByStore, type LiveBlog, type StatusChange, type Supervisor } from './live.blog';
