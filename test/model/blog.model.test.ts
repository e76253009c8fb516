/**
 * Model-based tests: every path xstate/graph derives from the blog machine (see `model.ts`) is executed
 * (a) against the machine with controllable stub actors and a SimulatedClock, and
 * (b) against persistence, through the runtime's own supervisor and persister over the real blog repo (in-memory
 *     PGlite): before every event and at the end, the row must hold the actor's whole persisted snapshot; the actor
 *     is dropped, the supervisor restores it from the row, and the restored actor must be the same and write nothing.
 * Each step must land in the model's state; the inspector records the transitions actually taken, which must be
 * exactly the ones the model predicts, and together cover all of the definition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, type Actor, type InspectionEvent } from 'xstate';
import { blogMachine, type BlogEvent, type BlogMachine, type StageInput } from '../../machines/blog.machine';
import type { Article, HeaderImage, Idea, PublishedPost, StageOutput } from '../../machines/blog.types';
import { createBlogRepo, type BlogRepo } from '../../src/db/blog.repo';
import type { Database } from '../../src/db/database';
import { openPglite } from '../../src/db/pglite.client';
import { createLogger } from '../../src/logger';
import { createPersister } from '../../src/runtime/persister';
import { createShards } from '../../src/runtime/store.shard';
import { createSupervisor } from '../../src/runtime/supervisor';
import {
  buildModel,
  definitionStates,
  definitionTransitions,
  expectedOf,
  MODEL_INPUTS,
  STAGE_RESULTS,
  statesOf,
  T0,
  transitionKeyOf,
  type ModelEvent,
  type ModelPath,
  type StageActor,
} from './model';

const model = buildModel();
const allStates = definitionStates();
const allTransitions = definitionTransitions();

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  until?: number;
}

/** Stub actors that wait to be told what to do, keyed by invoke id; `wait` sleeps on the simulated clock. */
function createStubWorld() {
  const clock = new SimulatedClock();
  clock.set(T0);
  const pending = new Map<string, Pending>();
  const hold = <T>(id: string, signal: AbortSignal, until?: number) =>
    new Promise<T>((resolve, reject) => {
      const entry: Pending = { resolve: resolve as (v: unknown) => void, reject, ...(until ? { until } : {}) };
      pending.set(id, entry);
      signal.addEventListener('abort', () => {
        if (pending.get(id) === entry) pending.delete(id);
      });
    });
  const stage = <T>(name: StageActor) =>
    fromPromise<StageOutput<T>, StageInput>(({ signal }) => hold<StageOutput<T>>(name, signal));
  const machine: BlogMachine = blogMachine.provide({
    actors: {
      admission: fromPromise<void, { blogId: string; instanceId: string }>(({ signal }) => hold('admission', signal)),
      ideas: stage<Idea[]>('ideas'),
      article: stage<Article>('article'),
      image: stage<HeaderImage>('image'),
      publish: stage<PublishedPost>('publish'),
      wait: fromPromise<void, { until: number }>(({ input, self, signal }) => {
        const promise = hold<void>(self.id, signal, input.until);
        const timer = clock.setTimeout(() => pending.get(self.id)?.resolve(undefined), input.until - clock.now());
        signal.addEventListener('abort', () => clock.clearTimeout(timer));
        return promise;
      }),
    },
  });
  return { clock, pending, machine };
}

type World = ReturnType<typeof createStubWorld>;
type BlogActor = Actor<BlogMachine>;
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Makes the world produce `event`: settle a stub, let a timer fire, or send a command. */
async function drive(world: World, actor: BlogActor, event: ModelEvent) {
  const [, kind, , id] = event.type.split('.');
  if (event.type.startsWith('xstate.')) {
    const stub = world.pending.get(id ?? '');
    if (!stub) throw new Error(`${event.type}: no ${id} actor is running`);
    if (kind === 'error' && 'error' in event) stub.reject({ ...event.error, at: world.clock.now() });
    else if (stub.until !== undefined) world.clock.set(stub.until);
    else
      stub.resolve(id === 'admission' ? undefined : { result: STAGE_RESULTS[id as StageActor], at: world.clock.now() });
  } else {
    actor.send({ ...(event as BlogEvent), at: world.clock.now() });
  }
  await settle();
}

/** Records "leaf: source --event#i--> target" for every transition the root actor takes. */
function recordTransitions(taken: Set<string>) {
  let source: unknown;
  return (e: InspectionEvent) => {
    if (e.actorRef.sessionId !== e.rootId) return;
    if (e.type === '@xstate.event') source = (e.actorRef.getSnapshot() as { value: unknown }).value;
    if (e.type !== '@xstate.microstep') return;
    const leafId = statesOf(source).at(-1) ?? 'blog';
    for (const t of e._transitions) taken.add(transitionKeyOf(leafId, t));
    source = (e.snapshot as unknown as { value: unknown }).value;
  };
}

/** Runs one path; `between` may replace the actor before each event (persist, drop, restore). */
async function runPath(
  path: ModelPath,
  blogId: string,
  taken: Set<string>,
  between?: (actor: BlogActor, world: World, step: number) => Promise<BlogActor>,
) {
  const world = createStubWorld();
  const inspect = recordTransitions(taken);
  let actor = createActor(world.machine, { input: MODEL_INPUTS[path.kind](blogId), inspect });
  actor.start();
  await settle();
  for (const [i, step] of path.steps.entries()) {
    if (between) actor = await between(actor, world, i);
    await drive(world, actor, step.event);
    expect(expectedOf(actor.getSnapshot()), `${path.name}, step ${i + 1}`).toEqual(step.expected);
  }
  actor.stop();
  return actor;
}

describe('blog machine model', () => {
  const coverage = `model coverage: states ${model.states.size}/${allStates.length}, transitions ${model.transitions.size}/${allTransitions.length} (${model.paths.length} paths, ${model.paths.reduce((n, p) => n + p.steps.length, 0)} steps)`;

  it('covers every state and every transition of the definition', () => {
    console.log(coverage);
    expect([...model.states].sort()).toEqual([...allStates].sort());
    expect([...model.transitions].sort()).toEqual([...allTransitions].sort());
  });

  it('covers what the issue lists: selections in and out of range, errors, cancel, retry, timeouts', () => {
    const names = model.paths.map((p) => p.name).join('\n');
    for (const needed of ['SELECT(0)', 'SELECT(2)', 'selectionTimeout', 'backoff', 'RETRY'])
      expect(names).toContain(needed);
    for (const stage of Object.keys(STAGE_RESULTS)) {
      expect(names).toContain(`${stage}!retryable`);
      expect(names).toContain(`${stage}!fatal`);
    }
    const cancelledFrom = allTransitions.filter((t) => t.includes('--CANCEL#0-->')).map((t) => t.split(':')[0]);
    expect(cancelledFrom).toHaveLength(allStates.length - 2 - 4); // every leaf but DONE, CANCELLED
  });
});

describe('model paths against the machine (stub actors, simulated clock)', () => {
  const taken = new Set<string>();

  it('ends every path where the model says, taking exactly the modelled transitions', async () => {
    for (const [i, path] of model.paths.entries()) await runPath(path, `model-${i}`, taken);
    expect([...taken].sort()).toEqual([...allTransitions].sort());
  });
});

describe('model paths through the supervisor and persister (persist, drop, restore before every event)', () => {
  let database: Database;
  let repo: BlogRepo;
  const taken = new Set<string>();
  const log = createLogger('silent', 'model');

  beforeAll(async () => {
    database = await openPglite(undefined);
    await database.migrate();
    repo = createBlogRepo(database.db);
  });
  afterAll(async () => {
    await database?.close();
  });

  /** JSON as the row holds it (undefined fields dropped). */
  const json = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
  /** Invoked children and their status: of a persisted snapshot, and of a live actor. */
  const childrenOf = (snapshot: unknown) =>
    Object.entries((snapshot as { children: Record<string, { snapshot: { status: string } }> }).children)
      .map(([id, c]) => `${id}:${c.snapshot.status}`)
      .sort();
  const liveChildrenOf = (actor: BlogActor) =>
    Object.entries(actor.getSnapshot().children as Record<string, { getSnapshot(): { status: string } }>)
      .map(([id, c]) => `${id}:${c.getSnapshot().status}`)
      .sort();

  /**
   * Runs one path with the blog in a real supervisor (real persister, repo on PGlite). Before every event and at
   * the end: everything is committed, the row holds the actor's whole persisted snapshot (state value, full
   * context, invoked children with their input and status); the actor is dropped and the supervisor restores it
   * from the row; the restored actor persists to exactly the same snapshot, runs the same children, and the
   * supervisor writes nothing for it (the skip of unchanged snapshots: the row's version does not move).
   */
  async function runThroughSupervisor(path: ModelPath, blogId: string) {
    const world = createStubWorld();
    const persister = createPersister(repo, {
      onConflict: (id) => {
        throw new Error(`unexpected version conflict on ${id}`);
      },
      onRetry: (error) => {
        throw error;
      },
    });
    const supervisor = createSupervisor({
      machine: world.machine,
      repo,
      persister,
      shards: createShards({ ttlMs: Infinity, maxPerStore: 10, unleased: true }),
      log,
      inspect: recordTransitions(taken),
      now: () => world.clock.now(),
    });
    let last: unknown;
    let lastPersisted: unknown;
    /** The latest snapshot the actor emitted, persisted as it was then: what the row must hold once committed. */
    const keep = (snapshot: unknown) => {
      last = snapshot;
      lastPersisted = json(world.machine.getPersistedSnapshot(snapshot as never));
    };
    const watch = (actor: BlogActor) => {
      keep(actor.getSnapshot());
      actor.subscribe(keep);
    };
    const input = MODEL_INPUTS[path.kind](blogId);
    expect((await supervisor.create(input, new Date(T0))).created).toBe(true);
    let actor = (await supervisor.load(blogId))!.actor;
    watch(actor);

    const roundTrip = async (where: string) => {
      await supervisor.flush();
      const before = (await repo.get(blogId))!;
      const persisted = lastPersisted;
      expect(before.snapshot, `${where}: the row holds the whole snapshot`).toEqual(persisted);
      supervisor.dropStore(input.instanceId);
      const entry = await supervisor.load(blogId);
      expect(entry, `${where}: restored`).toBeDefined();
      actor = entry!.actor;
      watch(actor);
      await settle();
      expect(json(actor.getPersistedSnapshot()), `${where}: restored to the same snapshot`).toEqual(persisted);
      expect(liveChildrenOf(actor), `${where}: restored children`).toEqual(childrenOf(persisted));
      await supervisor.flush();
      const after = (await repo.get(blogId))!;
      expect(after.version, `${where}: a restore writes nothing`).toBe(before.version);
    };

    for (const [i, step] of path.steps.entries()) {
      await roundTrip(`${path.name}, before step ${i + 1}`);
      if (step.event.type.startsWith('xstate.')) await drive(world, actor, step.event);
      else {
        await supervisor.send((await supervisor.load(blogId))!, {
          ...(step.event as BlogEvent),
          at: world.clock.now(),
        });
        await settle();
      }
      expect(expectedOf(last as never), `${path.name}, step ${i + 1}`).toEqual(step.expected);
    }
    await roundTrip(`${path.name}, at the end`);
    await supervisor.stopAll();
  }

  it('ends every path where the model says, and round-trips every state, the final one included', async () => {
    const started = Date.now();
    for (const [i, path] of model.paths.entries()) await runThroughSupervisor(path, `persisted-${i}`);
    expect([...taken].sort()).toEqual([...allTransitions].sort());
    console.log(`persisted model paths: ${model.paths.length} in ${Date.now() - started} ms`);
  });
});
