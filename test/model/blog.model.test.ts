/**
 * Model-based tests: every path xstate/graph derives from the blog machine (see `model.ts`) is executed
 * (a) against the machine with controllable stub actors and a SimulatedClock, and
 * (b) against persistence: before every event the actor's snapshot is written through the real blog repo
 *     (in-memory PGlite), the actor is dropped, and a new one is restored from the row read back.
 * Each step must land in the model's state; the inspector records the transitions actually taken, which must be
 * exactly the ones the model predicts, and together cover all of the definition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, type Actor, type InspectionEvent } from 'xstate';
import {
  BLOG_MACHINE_VERSION,
  blogMachine,
  type BlogEvent,
  type BlogMachine,
  type StageInput,
} from '../../machines/blog.machine';
import type { Article, HeaderImage, Idea, PublishedPost, StageOutput } from '../../machines/blog.types';
import { migrateSnapshot } from '../../machines/blog.migrations';
import { createBlogRepo, type BlogRepo } from '../../src/db/blog.repo';
import type { Database } from '../../src/db/database';
import { openPglite } from '../../src/db/pglite.client';
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

describe('model paths against persistence (persist, drop, restore before every event)', () => {
  let database: Database;
  let repo: BlogRepo;
  const taken = new Set<string>();

  beforeAll(async () => {
    database = await openPglite(undefined);
    await database.migrate();
    repo = createBlogRepo(database.db);
  });
  afterAll(async () => {
    await database?.close();
  });

  /** Writes the actor's snapshot through the repo, stops it, and restores a new one from the row read back. */
  const persistDropRestore = (blogId: string) => async (actor: BlogActor, world: World, step: number) => {
    const snapshot = actor.getPersistedSnapshot();
    const status = statesOf(actor.getSnapshot().value)[0]?.replace('blog.', '') ?? 'PENDING';
    const view = { status };
    if (step === 0) {
      const event = { seq: 1, payload: { status } };
      const fields = { blogId, instanceId: 'store-1', status, snapshot, machineVersion: BLOG_MACHINE_VERSION, view };
      expect(await repo.insert({ ...fields, event, createdAt: new Date(T0) })).toBe(true);
    } else {
      const row = await repo.get(blogId);
      const write = { blogId, instanceId: 'store-1', status, seq: step + 1, snapshot, view, wakeAt: null, events: [] };
      const conflicts = await repo.commit([
        { ...write, expectedVersion: row!.version, machineVersion: BLOG_MACHINE_VERSION },
      ]);
      expect(conflicts.size).toBe(0);
    }
    actor.stop();
    const row = await repo.get(blogId);
    const restored = migrateSnapshot(row!.snapshot, row!.machineVersion, BLOG_MACHINE_VERSION);
    const next = createActor(world.machine, {
      snapshot: restored as never,
      input: undefined,
      inspect: recordTransitions(taken),
    });
    next.start();
    await settle();
    return next;
  };

  it('ends every path where the model says', async () => {
    const started = Date.now();
    for (const [i, path] of model.paths.entries()) {
      const blogId = `persisted-${i}`;
      await runPath(path, blogId, taken, persistDropRestore(blogId));
    }
    expect([...taken].sort()).toEqual([...allTransitions].sort());
    console.log(`persisted model paths: ${model.paths.length} in ${Date.now() - started} ms`);
  });
});
