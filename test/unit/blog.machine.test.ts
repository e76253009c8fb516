/**
 * The blog statechart, every state and transition, with stub actors and a SimulatedClock: no real waiting.
 * Stage stubs follow a script (`'ok'`, `'hang'` or a failure) and answer `{ result, at }` or reject with a
 * plain StageFailure; `wait` resolves when the simulated clock reaches its `until`; admissions can be held.
 * An inspector records every transition taken, and the last test checks that all of them were exercised.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createActor, fromPromise, SimulatedClock, type Actor, type InspectionEvent } from 'xstate';
import { backoffDelay, hashUnit, MAX_BACKOFF_MS } from '../../machines/backoff';
import {
  BLOG_MACHINE_VERSION,
  blogMachine,
  type BlogInput,
  type BlogMachine,
  type StageInput,
} from '../../machines/blog.machine';
import { migrateSnapshot, SNAPSHOT_MIGRATIONS, type PersistedSnapshot } from '../../machines/blog.migrations';
import type { Article, BlogSettings, HeaderImage, Idea, PublishedPost, StageOutput } from '../../machines/blog.types';

const T0 = 1_700_000_000_000;
const SETTINGS: BlogSettings = { maxAttempts: 3, retryBaseMs: 1000, selectionTimeoutMs: 60_000 };
const IDEAS: Idea[] = [
  { title: 'Boots for snow', summary: 'Grip and warmth' },
  { title: 'Caring for leather', summary: 'Wax, brush, repeat' },
  { title: 'Wool socks', summary: 'Why merino' },
];
const GIVEN_IDEA: Idea = { title: 'Ten winter looks', summary: 'From city to slope' };
const ARTICLE: Article = { title: 'Boots', excerpt: 'Warm feet', markdown: '# Boots', html: '<h1>Boots</h1>' };
const IMAGE: HeaderImage = { url: 'https://img.example/boots.png', alt: 'Boots in snow' };
const POST: PublishedPost = { id: 'post-1', url: 'https://store.example/post/boots' };

type StageActor = 'ideas' | 'article' | 'image' | 'publish';
interface Failure {
  code: string;
  retryable: boolean;
  retryAfterMs?: number;
}
/** What one call of a stage stub does. */
type Outcome = 'ok' | 'hang' | Failure;
type Script = Partial<Record<StageActor, Outcome[]>>;

const RETRYABLE: Failure = { code: 'RATE_LIMITED', retryable: true };
const FATAL: Failure = { code: 'CONTENT_POLICY', retryable: false };

const topicInput = (settings: BlogSettings = SETTINGS): BlogInput => ({
  blogId: 'blog-1',
  instanceId: 'store-1',
  request: { topic: 'Winter boots', keywords: ['boots'] },
  settings,
});
const ideaInput = (settings: BlogSettings = SETTINGS): BlogInput => ({
  blogId: 'blog-2',
  instanceId: 'store-1',
  request: { idea: GIVEN_IDEA, keywords: [] },
  settings,
});

// ---------------------------------------------------------------------------------------------------------------
// Transition coverage: every microstep of every actor in this file is recorded as "source --event--> target".
const taken = new Set<string>();
const cancelledFrom = new Set<string>();
const sourceOf = new Map<unknown, unknown>();

function leafOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, sub] = Object.entries(value as Record<string, unknown>)[0] ?? ['?', undefined];
  return sub === undefined ? key : `${key}.${leafOf(sub)}`;
}

function inspect(e: InspectionEvent) {
  if (e.type === '@xstate.event') {
    // the target's snapshot before it handles the event: the source state of the transitions that follow
    const snapshot = e.actorRef.getSnapshot() as { value?: unknown } | undefined;
    if (snapshot && 'value' in snapshot) sourceOf.set(e.actorRef, snapshot.value);
  }
  if (e.type !== '@xstate.microstep') return;
  const from = sourceOf.get(e.actorRef);
  for (const t of e._transitions) {
    const targets = (t.target ?? []).map((n) => n.id).join(',');
    taken.add(`${t.source.id} --${t.eventType}--> ${targets}`);
    if (t.eventType === 'CANCEL' && from !== undefined) cancelledFrom.add(leafOf(from));
  }
  sourceOf.set(e.actorRef, (e.snapshot as unknown as { value: unknown }).value);
}

// ---------------------------------------------------------------------------------------------------------------
// The world: a simulated clock, stub actors and what they saw.

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function startClock(): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(T0);
  return clock;
}

function createWorld(script: Script = {}, options: { holdAdmissions?: number[]; clock?: SimulatedClock } = {}) {
  const clock = options.clock ?? startClock();
  const calls: Record<StageActor, Array<{ input: StageInput; at: number }>> = {
    ideas: [],
    article: [],
    image: [],
    publish: [],
  };
  const aborted: string[] = [];
  const waits: number[] = [];
  const held: Array<() => void> = [];
  let admissions = 0;
  const admissionInputs: Array<{ blogId: string; instanceId: string; text?: boolean }> = [];

  function stage<T>(name: StageActor, result: T) {
    return fromPromise<StageOutput<T>, StageInput>(({ input, signal }) => {
      calls[name].push({ input, at: clock.now() });
      const outcome = script[name]?.shift() ?? 'ok';
      if (outcome === 'ok') return Promise.resolve({ result, at: clock.now() });
      if (outcome === 'hang') {
        return new Promise<StageOutput<T>>((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted.push(name);
            reject(new Error('aborted'));
          }),
        );
      }
      const error = {
        code: outcome.code,
        message: `${name} failed: ${outcome.code}`,
        retryable: outcome.retryable,
        at: clock.now(),
        ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
      };
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- stages reject with plain StageFailure JSON
      return Promise.reject(error);
    });
  }

  const machine: BlogMachine = blogMachine.provide({
    actors: {
      admission: fromPromise<void, { blogId: string; instanceId: string; text?: boolean }>(({ input, signal }) => {
        admissions += 1;
        admissionInputs.push(input);
        if (!options.holdAdmissions?.includes(admissions)) return Promise.resolve();
        return new Promise<void>((resolve, reject) => {
          held.push(resolve);
          signal.addEventListener('abort', () => {
            aborted.push('admission');
            reject(new Error('aborted'));
          });
        });
      }),
      ideas: stage('ideas', IDEAS),
      article: stage('article', ARTICLE),
      image: stage('image', IMAGE),
      publish: stage('publish', POST),
      wait: fromPromise<void, { until: number }>(
        ({ input, signal }) =>
          new Promise<void>((resolve) => {
            waits.push(input.until);
            const left = input.until - clock.now();
            if (left <= 0) return resolve();
            const id = clock.setTimeout(resolve, left);
            signal.addEventListener('abort', () => {
              aborted.push('wait');
              clock.clearTimeout(id);
            });
          }),
      ),
    },
  });

  return {
    clock,
    machine,
    calls,
    aborted,
    waits,
    admissions: () => admissions,
    admissionInputs,
    /** Grants every admission held so far. */
    async admit() {
      held.splice(0).forEach((resolve) => resolve());
      await settle();
    },
    async start(input: BlogInput) {
      const actor = createActor(machine, { input, inspect });
      actor.start();
      await settle();
      return actor;
    },
    async restore(snapshot: unknown) {
      const actor = createActor(machine, { snapshot: snapshot as never, input: undefined, inspect });
      actor.start();
      await settle();
      return actor;
    },
    async advanceTo(time: number) {
      clock.set(time);
      await settle();
    },
    async advance(ms: number) {
      clock.increment(ms);
      await settle();
    },
  };
}

type BlogActor = Actor<BlogMachine>;
const leaf = (actor: BlogActor) => leafOf(actor.getSnapshot().value);
const ctx = (actor: BlogActor) => actor.getSnapshot().context;
const children = (actor: BlogActor) => Object.keys(actor.getSnapshot().children);

async function send(actor: BlogActor, event: Parameters<BlogActor['send']>[0]) {
  if (actor.getSnapshot().status === 'active') actor.send(event);
  else {
    // XState warns about events sent to a stopped (final) actor; that warning is the expected outcome here
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    actor.send(event);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('stopped actor'));
    warn.mockRestore();
  }
  await settle();
}

/** The statuses an actor went through, one per change. */
function trackStatuses(actor: BlogActor): string[] {
  const seen: string[] = [leafOf(actor.getSnapshot().value).split('.')[0]!];
  actor.subscribe((snapshot) => {
    const status = leafOf(snapshot.value).split('.')[0]!;
    if (seen.at(-1) !== status) seen.push(status);
  });
  return seen;
}

/** Each working stage, the stub it calls, the kind of blog that reaches it quickest, and where success leads. */
const STAGES = [
  {
    status: 'GENERATING_IDEAS',
    stub: 'ideas',
    input: topicInput,
    next: 'AWAITING_SELECTION',
    nextStub: undefined,
  },
  {
    status: 'GENERATING_CONTENT',
    stub: 'article',
    input: ideaInput,
    next: 'GENERATING_IMAGE',
    nextStub: 'image',
  },
  {
    status: 'GENERATING_IMAGE',
    stub: 'image',
    input: ideaInput,
    next: 'PUBLISHING',
    nextStub: 'publish',
  },
  { status: 'PUBLISHING', stub: 'publish', input: ideaInput, next: 'DONE', nextStub: undefined },
] as const;

/** A script for `stub`, with the stage after it hanging so that the blog stops right there. */
function scriptFor(stage: (typeof STAGES)[number], outcomes: Outcome[]): Script {
  return { [stage.stub]: outcomes, ...(stage.nextStub ? { [stage.nextStub]: ['hang'] } : {}) };
}

/** Brings a topic blog to AWAITING_SELECTION. */
async function awaitingSelection(world: ReturnType<typeof createWorld>) {
  const actor = await world.start(topicInput());
  expect(leaf(actor)).toBe('AWAITING_SELECTION');
  return actor;
}

// ---------------------------------------------------------------------------------------------------------------

describe('blog machine: the happy paths', () => {
  it('takes a topic blog PENDING → GENERATING_IDEAS → AWAITING_SELECTION → (SELECT) PENDING → GENERATING_CONTENT → GENERATING_IMAGE → PUBLISHING → DONE', async () => {
    const world = createWorld();
    const actor = createActor(world.machine, { input: topicInput(), inspect });
    expect(leaf(actor)).toBe('PENDING');
    const statuses = trackStatuses(actor);
    actor.start();
    await settle();

    expect(statuses).toEqual(['PENDING', 'GENERATING_IDEAS', 'AWAITING_SELECTION']);
    expect(ctx(actor).ideas).toEqual(IDEAS);
    expect(ctx(actor).selectionDeadline).toBe(T0 + SETTINGS.selectionTimeoutMs);
    expect(ctx(actor).idea).toBeUndefined();
    expect(world.calls.article).toHaveLength(0);

    await send(actor, { type: 'SELECT', ideaIndex: 1, at: T0 });
    expect(statuses).toEqual([
      'PENDING',
      'GENERATING_IDEAS',
      'AWAITING_SELECTION',
      'PENDING',
      'GENERATING_CONTENT',
      'GENERATING_IMAGE',
      'PUBLISHING',
      'DONE',
    ]);
    const context = ctx(actor);
    expect(context).toMatchObject({
      ideas: IDEAS,
      idea: IDEAS[1],
      article: ARTICLE,
      image: IMAGE,
      post: POST,
      attempts: 0,
    });
    expect(context.error).toBeUndefined();
    expect(actor.getSnapshot().status).toBe('done');
    // each stage got what the previous ones produced
    expect(world.calls.ideas[0]?.input).toMatchObject({ blogId: 'blog-1', instanceId: 'store-1', attempt: 1 });
    expect(world.calls.article[0]?.input).toMatchObject({ idea: IDEAS[1], attempt: 1 });
    expect(world.calls.image[0]?.input).toMatchObject({ idea: IDEAS[1], article: ARTICLE });
    expect(world.calls.publish[0]?.input).toMatchObject({ idea: IDEAS[1], article: ARTICLE, image: IMAGE });
  });

  it('takes an idea blog straight from PENDING to GENERATING_CONTENT, skipping ideas and selection', async () => {
    const world = createWorld();
    const actor = createActor(world.machine, { input: ideaInput(), inspect });
    const statuses = trackStatuses(actor);
    actor.start();
    await settle();

    expect(statuses).toEqual(['PENDING', 'GENERATING_CONTENT', 'GENERATING_IMAGE', 'PUBLISHING', 'DONE']);
    expect(world.calls.ideas).toHaveLength(0);
    expect(ctx(actor)).toMatchObject({ idea: GIVEN_IDEA, article: ARTICLE, image: IMAGE, post: POST });
    expect(ctx(actor).ideas).toBeUndefined();
    expect(world.calls.article[0]?.input.idea).toEqual(GIVEN_IDEA);
  });
});

describe('blog machine: admission', () => {
  it('keeps the blog PENDING, calling nothing, until its store admits it', async () => {
    const world = createWorld({}, { holdAdmissions: [1] });
    const actor = await world.start(topicInput());
    await world.advance(24 * 3600_000);
    expect(leaf(actor)).toBe('PENDING');
    expect(children(actor)).toEqual(['admission']);
    expect(world.calls.ideas).toHaveLength(0);

    await world.admit();
    expect(leaf(actor)).toBe('AWAITING_SELECTION');
  });

  it('goes from PENDING to GENERATING_CONTENT for an idea blog once admitted', async () => {
    const world = createWorld({ article: ['hang'] }, { holdAdmissions: [1] });
    const actor = await world.start(ideaInput());
    expect(leaf(actor)).toBe('PENDING');
    await world.admit();
    expect(leaf(actor)).toBe('GENERATING_CONTENT.running');
  });

  it('is admitted once, in PENDING: from there it keeps its slot from stage to stage, never waiting again', async () => {
    const world = createWorld();
    const actor = await world.start(ideaInput());
    expect(leaf(actor)).toBe('DONE');
    expect(world.admissions()).toBe(1);
  });

  it.each(STAGES)('waits in PENDING for a slot when a RETRY of $status brings it back to work', async (stage) => {
    const { status, stub, input } = stage;
    const world = createWorld(scriptFor(stage, [FATAL, 'ok']), { holdAdmissions: [2] });
    const actor = await world.start(input());
    expect(leaf(actor)).toBe('FAILED');
    await send(actor, { type: 'RETRY', at: world.clock.now() });
    await world.advance(3600_000);
    expect(leaf(actor)).toBe('PENDING');
    expect(ctx(actor)).toMatchObject({ resumes: status, attempts: 0 });
    expect(ctx(actor).error).toBeUndefined();
    expect(children(actor)).toEqual(['admission']);
    // The store's daily budget is waited for only before a text stage.
    const text = status === 'GENERATING_IDEAS' || status === 'GENERATING_CONTENT';
    expect(world.admissionInputs.at(-1)).toEqual({
      blogId: actor.getSnapshot().context.blogId,
      instanceId: 'store-1',
      text,
    });
    expect(world.calls[stub]).toHaveLength(1);

    await world.admit();
    expect(world.calls[stub]).toHaveLength(2);
    expect(world.calls[stub][1]?.input.attempt).toBe(1);
    expect(ctx(actor).resumes).toBeUndefined();
    expect(leaf(actor).split('.')[0]).toBe(stage.next);
  });

  it('waits in PENDING for a slot after the owner selects an idea, then generates the content', async () => {
    const world = createWorld({ image: ['hang'] }, { holdAdmissions: [2] });
    const actor = await awaitingSelection(world);
    const statuses: string[] = [];
    actor.subscribe((s) => statuses.push(leaf(actor).split('.')[0]! + (s.status === 'active' ? '' : '!')));
    await send(actor, { type: 'SELECT', ideaIndex: 1, at: world.clock.now() });
    expect(leaf(actor)).toBe('PENDING');
    expect(ctx(actor)).toMatchObject({ idea: IDEAS[1], resumes: 'GENERATING_CONTENT' });
    expect(children(actor)).toEqual(['admission']);
    expect(world.admissionInputs.at(-1)?.text).toBe(true);
    expect(world.calls.article).toHaveLength(0);

    await world.admit();
    expect(world.calls.article).toHaveLength(1);
    expect(world.calls.article[0]?.input.idea).toEqual(IDEAS[1]);
    expect(leaf(actor)).toBe('GENERATING_IMAGE.running');
    expect([...new Set(statuses)]).toEqual(['PENDING', 'GENERATING_CONTENT', 'GENERATING_IMAGE']);
  });
});

describe.each(STAGES)('blog machine: stage $status', (stage) => {
  const { status, stub, input, next } = stage;
  it('waits exactly the backoff after a retryable error (not 1 ms less), tries again, and moves on', async () => {
    const world = createWorld(scriptFor(stage, [RETRYABLE, RETRYABLE, 'ok']));
    const actor = await world.start(input());

    expect(leaf(actor)).toBe(`${status}.backoff`);
    expect(children(actor)).toEqual(['backoff']);
    expect(ctx(actor).attempts).toBe(1);
    expect(ctx(actor).lastError).toMatchObject({ code: 'RATE_LIMITED', retryable: true, at: T0 });
    const retryAt1 = ctx(actor).retryAt!;
    expect(retryAt1 - T0).toBeGreaterThanOrEqual(SETTINGS.retryBaseMs / 2);
    expect(retryAt1 - T0).toBeLessThanOrEqual(SETTINGS.retryBaseMs);
    expect(world.waits).toEqual([retryAt1]);

    await world.advanceTo(retryAt1 - 1);
    expect(world.calls[stub]).toHaveLength(1);
    expect(leaf(actor)).toBe(`${status}.backoff`);
    await world.advance(1);
    expect(world.calls[stub]).toHaveLength(2);
    expect(world.calls[stub][1]).toMatchObject({ at: retryAt1, input: { attempt: 2 } });

    // second failure: attempt 2 waits about twice as long, counted from that failure
    expect(leaf(actor)).toBe(`${status}.backoff`);
    expect(ctx(actor).attempts).toBe(2);
    const retryAt2 = ctx(actor).retryAt!;
    expect(retryAt2 - retryAt1).toBeGreaterThanOrEqual(SETTINGS.retryBaseMs);
    expect(retryAt2 - retryAt1).toBeLessThanOrEqual(2 * SETTINGS.retryBaseMs);
    await world.advanceTo(retryAt2 - 1);
    expect(world.calls[stub]).toHaveLength(2);
    await world.advance(1);
    expect(world.calls[stub]).toHaveLength(3);
    expect(world.calls[stub][2]).toMatchObject({ at: retryAt2, input: { attempt: 3 } });

    expect(leaf(actor).split('.')[0]).toBe(next);
    if (stage.nextStub) {
      // the next working stage starts with fresh attempts
      expect(ctx(actor)).toMatchObject({ attempts: 0 });
      expect(ctx(actor).lastError).toBeUndefined();
      expect(ctx(actor).retryAt).toBeUndefined();
    }
  });

  it('is FAILED with { stage, code, message, attempts } once attempts reach maxAttempts', async () => {
    const world = createWorld({ [stub]: [RETRYABLE, RETRYABLE, RETRYABLE, RETRYABLE] });
    const actor = await world.start(input());
    await world.advance(MAX_BACKOFF_MS);
    await world.advance(MAX_BACKOFF_MS);

    expect(world.calls[stub]).toHaveLength(SETTINGS.maxAttempts);
    expect(leaf(actor)).toBe('FAILED');
    expect(ctx(actor).error).toEqual({
      stage: status,
      code: 'RATE_LIMITED',
      message: `${stub} failed: RATE_LIMITED`,
      attempts: 3,
    });
    expect(ctx(actor).retryAt).toBeUndefined();
    expect(children(actor)).toEqual([]);
    expect(actor.getSnapshot().status).toBe('active'); // FAILED is not final: RETRY can resume it
    await world.advance(MAX_BACKOFF_MS);
    expect(world.calls[stub]).toHaveLength(SETTINGS.maxAttempts);
  });

  it('is FAILED at once, with attempts 1, on a non-retryable error', async () => {
    const world = createWorld({ [stub]: [FATAL] });
    const actor = await world.start(input());
    expect(leaf(actor)).toBe('FAILED');
    expect(ctx(actor).error).toEqual({
      stage: status,
      code: 'CONTENT_POLICY',
      message: `${stub} failed: CONTENT_POLICY`,
      attempts: 1,
    });
    expect(world.calls[stub]).toHaveLength(1);
    expect(world.waits).toEqual([]);
  });

  it('honours Retry-After as a floor of the backoff, never shortening it', async () => {
    const world = createWorld(
      scriptFor(stage, [{ ...RETRYABLE, retryAfterMs: 45_000 }, { ...RETRYABLE, retryAfterMs: 1 }, 'ok']),
    );
    const actor = await world.start(input());
    expect(ctx(actor).retryAt).toBe(T0 + 45_000);
    await world.advanceTo(T0 + 45_000 - 1);
    expect(world.calls[stub]).toHaveLength(1);
    await world.advance(1);
    expect(world.calls[stub]).toHaveLength(2);
    // a Retry-After below the backoff does not shorten it
    const retryAt = ctx(actor).retryAt!;
    expect(retryAt - (T0 + 45_000)).toBeGreaterThanOrEqual(SETTINGS.retryBaseMs);
    await world.advanceTo(retryAt);
    expect(leaf(actor).split('.')[0]).toBe(next);
  });

  it('resumes the failed stage on RETRY, with fresh attempts, and finishes', async () => {
    const world = createWorld({ [stub]: [FATAL, 'ok'] });
    const actor = await world.start(input());
    expect(leaf(actor)).toBe('FAILED');

    await send(actor, { type: 'RETRY', at: world.clock.now() });
    expect(world.calls[stub]).toHaveLength(2);
    expect(world.calls[stub][1]?.input.attempt).toBe(1);
    expect(ctx(actor).error).toBeUndefined();
    if (next === 'AWAITING_SELECTION') await send(actor, { type: 'SELECT', ideaIndex: 0, at: world.clock.now() });
    expect(leaf(actor)).toBe('DONE');
    expect(ctx(actor).post).toEqual(POST);
  });

  it('ignores RETRY and SELECT while it works', async () => {
    const world = createWorld({ [stub]: ['hang'] });
    const actor = await world.start(input());
    const before = JSON.stringify(actor.getPersistedSnapshot());
    const rejected: unknown[] = [];
    actor.on('rejected', (e) => rejected.push(e));
    await send(actor, { type: 'RETRY', at: T0 });
    await send(actor, { type: 'SELECT', ideaIndex: 0, at: T0 });
    expect(JSON.stringify(actor.getPersistedSnapshot())).toBe(before);
    expect(leaf(actor)).toBe(`${status}.running`);
    expect(world.calls[stub]).toHaveLength(1);
    expect(rejected).toEqual([]);
  });
});

describe('blog machine: AWAITING_SELECTION', () => {
  it('FAILS with SELECTION_TIMEOUT at exactly selectionDeadline, not 1 ms before', async () => {
    const world = createWorld();
    const actor = await awaitingSelection(world);
    const deadline = ctx(actor).selectionDeadline!;
    expect(deadline).toBe(T0 + SETTINGS.selectionTimeoutMs);
    expect(children(actor)).toEqual(['selectionTimeout']);

    await world.advanceTo(deadline - 1);
    expect(leaf(actor)).toBe('AWAITING_SELECTION');
    await world.advance(1);
    expect(leaf(actor)).toBe('FAILED');
    expect(ctx(actor).error).toEqual({
      stage: 'AWAITING_SELECTION',
      code: 'SELECTION_TIMEOUT',
      message: `no idea was selected within ${SETTINGS.selectionTimeoutMs} ms`,
      attempts: 1,
    });
    expect(ctx(actor).ideas).toEqual(IDEAS); // kept for the retry
  });

  it('waits again on RETRY after a timeout, with a new deadline counted from the RETRY’s at', async () => {
    const world = createWorld();
    const actor = await awaitingSelection(world);
    await world.advanceTo(ctx(actor).selectionDeadline!);
    expect(leaf(actor)).toBe('FAILED');

    await world.advance(5_000);
    const at = world.clock.now() - 10; // the command was accepted a little earlier
    await send(actor, { type: 'RETRY', at });
    expect(leaf(actor)).toBe('AWAITING_SELECTION');
    expect(ctx(actor).error).toBeUndefined();
    expect(ctx(actor).selectionDeadline).toBe(at + SETTINGS.selectionTimeoutMs);
    expect(world.calls.ideas).toHaveLength(1); // ideas are not generated again

    await world.advanceTo(at + SETTINGS.selectionTimeoutMs - 1);
    expect(leaf(actor)).toBe('AWAITING_SELECTION');
    await send(actor, { type: 'SELECT', ideaIndex: 2, at: world.clock.now() });
    expect(leaf(actor)).toBe('DONE');
    expect(ctx(actor).idea).toEqual(IDEAS[2]);
  });

  it('times out again at the new deadline when the retried selection never comes', async () => {
    const world = createWorld();
    const actor = await awaitingSelection(world);
    await world.advanceTo(ctx(actor).selectionDeadline!);
    const at = world.clock.now();
    await send(actor, { type: 'RETRY', at });
    await world.advanceTo(at + SETTINGS.selectionTimeoutMs - 1);
    expect(leaf(actor)).toBe('AWAITING_SELECTION');
    await world.advance(1);
    expect(leaf(actor)).toBe('FAILED');
    expect(ctx(actor).error?.code).toBe('SELECTION_TIMEOUT');
  });

  it.each([
    ['negative', -1],
    ['too big', IDEAS.length],
    ['far too big', 1e9],
    ['non-integer', 1.5],
    ['NaN', Number.NaN],
  ])('rejects a %s ideaIndex with INVALID_SELECTION and keeps waiting, unchanged', async (_, ideaIndex) => {
    const world = createWorld();
    const actor = await awaitingSelection(world);
    const rejected: unknown[] = [];
    actor.on('rejected', (e) => rejected.push(e));
    const before = JSON.stringify(actor.getPersistedSnapshot());

    await send(actor, { type: 'SELECT', ideaIndex, at: T0 });
    expect(rejected).toEqual([
      { type: 'rejected', code: 'INVALID_SELECTION', message: expect.stringContaining(String(ideaIndex)) },
    ]);
    expect(JSON.stringify(actor.getPersistedSnapshot())).toBe(before);
    expect(leaf(actor)).toBe('AWAITING_SELECTION');
    expect(children(actor)).toEqual(['selectionTimeout']);

    // the deadline still holds, and a valid selection still works
    await send(actor, { type: 'SELECT', ideaIndex: 0, at: T0 });
    expect(ctx(actor).idea).toEqual(IDEAS[0]);
    expect(leaf(actor)).toBe('DONE');
  });

  it('ignores a second SELECT once content generation started', async () => {
    const world = createWorld({ article: ['hang'] });
    const actor = await awaitingSelection(world);
    const rejected: unknown[] = [];
    actor.on('rejected', (e) => rejected.push(e));
    await send(actor, { type: 'SELECT', ideaIndex: 1, at: T0 });
    const before = JSON.stringify(actor.getPersistedSnapshot());
    await send(actor, { type: 'SELECT', ideaIndex: 2, at: T0 });
    await send(actor, { type: 'SELECT', ideaIndex: 99, at: T0 });
    expect(JSON.stringify(actor.getPersistedSnapshot())).toBe(before);
    expect(ctx(actor).idea).toEqual(IDEAS[1]);
    expect(rejected).toEqual([]);
  });

  it('ignores SELECT in PENDING, FAILED and DONE, without a rejection', async () => {
    const rejected: unknown[] = [];
    const pending = await createWorld({}, { holdAdmissions: [1] }).start(topicInput());
    const failed = await createWorld({ ideas: [FATAL] }).start(topicInput());
    const done = await createWorld().start(ideaInput());
    for (const [actor, status] of [
      [pending, 'PENDING'],
      [failed, 'FAILED'],
      [done, 'DONE'],
    ] as const) {
      actor.on('rejected', (e) => rejected.push(e));
      const before = JSON.stringify(actor.getPersistedSnapshot());
      await send(actor, { type: 'SELECT', ideaIndex: 0, at: T0 });
      expect(leaf(actor)).toBe(status);
      expect(JSON.stringify(actor.getPersistedSnapshot())).toBe(before);
    }
    expect(rejected).toEqual([]);
  });
});

describe('blog machine: CANCEL', () => {
  type Scenario = {
    name: string;
    script?: Script;
    hold?: number[];
    input: () => BlogInput;
    select?: boolean;
    /** Sent RETRY once started (the blog failed first). */
    retry?: boolean;
    expect: string;
    aborts?: string;
  };
  const scenarios: Scenario[] = [
    { name: 'PENDING (waiting for admission)', hold: [1], input: topicInput, expect: 'PENDING', aborts: 'admission' },
    { name: 'AWAITING_SELECTION', input: topicInput, expect: 'AWAITING_SELECTION', aborts: 'wait' },
    { name: 'FAILED', script: { ideas: [FATAL] }, input: topicInput, expect: 'FAILED' },
    ...STAGES.flatMap((s) => [
      {
        name: `PENDING while waiting to resume ${s.status} (after a RETRY)`,
        script: { [s.stub]: [FATAL] },
        hold: [2],
        input: s.input,
        retry: true,
        expect: 'PENDING',
        aborts: 'admission',
      },
      {
        name: `${s.status} while running`,
        script: { [s.stub]: ['hang'] },
        input: s.input,
        expect: `${s.status}.running`,
        aborts: s.stub,
      },
      {
        name: `${s.status} while in backoff`,
        script: { [s.stub]: [RETRYABLE] },
        input: s.input,
        expect: `${s.status}.backoff`,
        aborts: 'wait',
      },
    ]),
  ];

  it.each(scenarios)('cancels from $name, stopping its work for good', async (scenario) => {
    const world = createWorld(scenario.script, { holdAdmissions: scenario.hold ?? [] });
    const actor = await world.start(scenario.input());
    if (scenario.retry) await send(actor, { type: 'RETRY', at: world.clock.now() });
    expect(leaf(actor)).toBe(scenario.expect);
    const calls = () => Object.values(world.calls).reduce((n, c) => n + c.length, 0);
    const callsBefore = calls();

    await send(actor, { type: 'CANCEL', at: world.clock.now() });
    expect(leaf(actor)).toBe('CANCELLED');
    expect(actor.getSnapshot().status).toBe('done');
    expect(children(actor)).toEqual([]);
    if (scenario.aborts) expect(world.aborted).toContain(scenario.aborts);

    // nothing moves it any more: time, grants, commands
    await world.admit();
    await world.advance(30 * 24 * 3600_000);
    await send(actor, { type: 'RETRY', at: world.clock.now() });
    await send(actor, { type: 'SELECT', ideaIndex: 0, at: world.clock.now() });
    expect(leaf(actor)).toBe('CANCELLED');
    expect(calls()).toBe(callsBefore);
  });
});

describe('blog machine: final statuses', () => {
  it('stays DONE (actor status done) whatever comes later', async () => {
    const world = createWorld();
    const actor = await world.start(ideaInput());
    expect(leaf(actor)).toBe('DONE');
    expect(actor.getSnapshot().status).toBe('done');
    const before = JSON.stringify(actor.getPersistedSnapshot());
    await send(actor, { type: 'CANCEL', at: T0 });
    await send(actor, { type: 'RETRY', at: T0 });
    expect(leaf(actor)).toBe('DONE');
    expect(JSON.stringify(actor.getPersistedSnapshot())).toBe(before);
  });

  it('stays CANCELLED whatever comes later, even a second CANCEL', async () => {
    const world = createWorld({ ideas: [FATAL] });
    const actor = await world.start(topicInput());
    await send(actor, { type: 'CANCEL', at: T0 });
    const before = JSON.stringify(actor.getPersistedSnapshot());
    await send(actor, { type: 'CANCEL', at: T0 });
    await send(actor, { type: 'RETRY', at: T0 });
    expect(leaf(actor)).toBe('CANCELLED');
    expect(JSON.stringify(actor.getPersistedSnapshot())).toBe(before);
  });

  it('ignores RETRY while not FAILED', async () => {
    const world = createWorld();
    const actor = await awaitingSelection(world);
    const before = JSON.stringify(actor.getPersistedSnapshot());
    await send(actor, { type: 'RETRY', at: T0 + 5 });
    expect(JSON.stringify(actor.getPersistedSnapshot())).toBe(before);
  });
});

describe('blog machine: persist and restore', () => {
  const roundTrip = (actor: BlogActor) => JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as PersistedSnapshot;

  it('restored mid-backoff, retries at the original retryAt: elapsed time counts', async () => {
    const clock = startClock();
    const first = createWorld({ article: [RETRYABLE] }, { clock });
    const actor = await first.start(ideaInput());
    const retryAt = ctx(actor).retryAt!;
    await first.advanceTo(T0 + Math.floor((retryAt - T0) / 2));
    const persisted = roundTrip(actor);
    actor.stop();
    expect(Object.keys(persisted.children as object)).toEqual(['backoff']);
    expect(persisted.children).toMatchObject({ backoff: { src: 'wait', snapshot: { input: { until: retryAt } } } });

    const second = createWorld({}, { clock });
    const restored = await second.restore(persisted);
    expect(leaf(restored)).toBe('GENERATING_CONTENT.backoff');
    expect(children(restored)).toEqual(['backoff']);
    expect(second.waits).toEqual([retryAt]);
    await second.advanceTo(retryAt - 1);
    expect(second.calls.article).toHaveLength(0);
    await second.advance(1);
    expect(second.calls.article).toHaveLength(1);
    expect(second.calls.article[0]?.input.attempt).toBe(2);
    expect(leaf(restored)).toBe('DONE');
  });

  it('restored mid-selection, times out at the original deadline, and a SELECT still works', async () => {
    const clock = startClock();
    const first = createWorld({}, { clock });
    const actor = await awaitingSelection(first);
    const deadline = ctx(actor).selectionDeadline!;
    await first.advance(20_000);
    const persisted = roundTrip(actor);
    actor.stop();
    expect(Object.keys(persisted.children as object)).toEqual(['selectionTimeout']);

    // two copies of the same blog, each with its own clock from now on
    const later = new SimulatedClock();
    later.set(clock.now());
    const idle = createWorld({}, { clock: later });
    const timingOut = await idle.restore(persisted);
    expect(children(timingOut)).toEqual(['selectionTimeout']);
    expect(idle.waits).toEqual([deadline]);
    const selecting = createWorld({}, { clock });
    const restored = await selecting.restore(persisted);

    // the first copy is left alone: it fails exactly at the original deadline
    await idle.advanceTo(deadline - 1);
    expect(leaf(timingOut)).toBe('AWAITING_SELECTION');
    await idle.advance(1);
    expect(leaf(timingOut)).toBe('FAILED');
    expect(ctx(timingOut).error?.code).toBe('SELECTION_TIMEOUT');

    // the second copy is selected before it
    await selecting.advanceTo(deadline - 1);
    await send(restored, { type: 'SELECT', ideaIndex: 1, at: selecting.clock.now() });
    expect(leaf(restored)).toBe('DONE');
    expect(ctx(restored).idea).toEqual(IDEAS[1]);
  });

  it('restored while a stage runs, runs it again (at-least-once) under the same child id', async () => {
    const clock = startClock();
    const first = createWorld({ image: ['hang'] }, { clock });
    const actor = await first.start(ideaInput());
    expect(children(actor)).toEqual(['image']);
    const persisted = roundTrip(actor);
    actor.stop();
    expect(Object.keys(persisted.children as object)).toEqual(['image']);

    const second = createWorld({}, { clock });
    const restored = await second.restore(persisted);
    expect(second.calls.image).toHaveLength(1);
    expect(second.calls.image[0]?.input).toMatchObject({ article: ARTICLE, attempt: 1 });
    expect(leaf(restored)).toBe('DONE');
  });

  it('names every invoked child by its stage, never by position', async () => {
    const names = new Set<string>();
    const world = createWorld({ ideas: [RETRYABLE, 'ok'], article: ['hang'] }, { holdAdmissions: [1] });
    const actor = await world.start(topicInput());
    actor.subscribe((s) => Object.keys(s.children).forEach((k) => names.add(k)));
    Object.keys(actor.getSnapshot().children).forEach((k) => names.add(k));
    await world.admit();
    await world.advance(MAX_BACKOFF_MS);
    await send(actor, { type: 'SELECT', ideaIndex: 0, at: world.clock.now() });
    expect([...names].sort()).toEqual(['admission', 'article', 'backoff', 'ideas', 'selectionTimeout']);
  });

  it('keeps the persisted snapshot small, JSON-safe and at the current machine version', async () => {
    const world = createWorld({ ideas: [RETRYABLE] });
    const actor = await world.start(topicInput());
    const persisted = actor.getPersistedSnapshot();
    expect(JSON.parse(JSON.stringify(persisted))).toEqual(persisted);
    expect(JSON.stringify(persisted).length).toBeLessThan(1024);
    expect(migrateSnapshot(persisted, BLOG_MACHINE_VERSION, BLOG_MACHINE_VERSION)).toBe(persisted);
  });
});

describe('backoffDelay', () => {
  const exp = (attempt: number, base = 1000) => Math.min(MAX_BACKOFF_MS, base * 2 ** (attempt - 1));

  it('grows exponentially, with jitter within [exp/2, exp]', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      for (const seed of ['a', 'blog-1', 'blog-2', 'f3b0c442-98fc-1c14']) {
        const delay = backoffDelay(attempt, 1000, seed);
        expect(delay).toBeGreaterThanOrEqual(exp(attempt) / 2);
        expect(delay).toBeLessThanOrEqual(exp(attempt));
      }
    }
  });

  it('spreads blogs that fail together', () => {
    const delays = new Set(Array.from({ length: 50 }, (_, i) => backoffDelay(3, 1000, `blog-${i}`)));
    expect(delays.size).toBeGreaterThan(25);
  });

  it('is deterministic: the same attempt and seed give the same delay (replays after a restore)', () => {
    expect(backoffDelay(4, 1000, 'blog-7')).toBe(backoffDelay(4, 1000, 'blog-7'));
    expect(hashUnit('x')).toBe(hashUnit('x'));
    expect(hashUnit('x')).toBeGreaterThanOrEqual(0);
    expect(hashUnit('x')).toBeLessThan(1);
  });

  it('is capped at MAX_BACKOFF_MS however many attempts', () => {
    for (const attempt of [9, 20, 60, 1000]) {
      const delay = backoffDelay(attempt, 1000, 'blog-1');
      expect(delay).toBeLessThanOrEqual(MAX_BACKOFF_MS);
      expect(delay).toBeGreaterThanOrEqual(MAX_BACKOFF_MS / 2);
    }
  });

  it('takes a Retry-After as a floor', () => {
    expect(backoffDelay(1, 1000, 'blog-1', 60_000)).toBe(60_000);
    expect(backoffDelay(1, 1000, 'blog-1', 1)).toBe(backoffDelay(1, 1000, 'blog-1'));
    expect(backoffDelay(30, 1000, 'blog-1', 10 * MAX_BACKOFF_MS)).toBe(10 * MAX_BACKOFF_MS);
  });
});

describe('migrateSnapshot', () => {
  const snapshot = { value: 'PENDING', steps: [] as number[] };
  const step = (n: number) => (s: PersistedSnapshot) => ({ ...s, steps: [...(s.steps as number[]), n] });

  it('changes nothing at the same version', () => {
    expect(migrateSnapshot(snapshot, 3, 3, { 3: () => ({ broken: true }) })).toBe(snapshot);
    expect(SNAPSHOT_MIGRATIONS).toBeTypeOf('object');
  });

  it('applies the steps in order, from each version to the next', () => {
    expect(migrateSnapshot(snapshot, 1, 4, { 3: step(3), 1: step(1), 2: step(2) })).toEqual({
      value: 'PENDING',
      steps: [1, 2, 3],
    });
    expect(migrateSnapshot(snapshot, 2, 3, { 1: step(1), 2: step(2) })).toEqual({ value: 'PENDING', steps: [2] });
  });

  it('throws on a snapshot of a newer machine version', () => {
    expect(() => migrateSnapshot(snapshot, 5, 4, {})).toThrow(/newer/);
  });

  it('throws when a step is missing', () => {
    expect(() => migrateSnapshot(snapshot, 1, 3, { 1: step(1) })).toThrow(/no migration from machine version 2 to 3/);
  });

  /** A snapshot as machine version 1 persisted it (shape captured from that version) in `<stage>.admitting`. */
  const v1Admitting = (stage: string, context: Record<string, unknown> = {}): PersistedSnapshot => ({
    status: 'active',
    value: { [stage]: 'admitting' },
    historyValue: {},
    context: {
      ...topicInput(),
      attempts: 0,
      ideas: IDEAS,
      selectionDeadline: T0 + SETTINGS.selectionTimeoutMs,
      idea: IDEAS[1],
      ...context,
    },
    children: {
      admission: {
        snapshot: { status: 'active', input: { blogId: 'blog-1', instanceId: 'store-1' } },
        src: 'admission',
        syncSnapshot: false,
      },
    },
  });

  it('restores a version 1 snapshot waiting in GENERATING_CONTENT.admitting as PENDING, resuming the content', async () => {
    const migrated = migrateSnapshot(v1Admitting('GENERATING_CONTENT'), 1, BLOG_MACHINE_VERSION);
    expect(migrated).toMatchObject({ value: 'PENDING', context: { resumes: 'GENERATING_CONTENT', idea: IDEAS[1] } });
    const world = createWorld({}, { holdAdmissions: [1] });
    const actor = await world.restore(migrated);
    expect(leaf(actor)).toBe('PENDING');
    expect(world.admissionInputs).toEqual([{ blogId: 'blog-1', instanceId: 'store-1', text: true }]);
    expect(world.calls.article).toHaveLength(0);

    await world.admit();
    expect(world.calls.article.map((c) => c.input.idea)).toEqual([IDEAS[1]]);
    expect(leaf(actor)).toBe('DONE');
  });

  it('restores a version 1 snapshot of a retried PUBLISHING (admitting) as PENDING, resuming the publishing', async () => {
    const v1 = v1Admitting('PUBLISHING', { article: ARTICLE, image: IMAGE });
    const world = createWorld({}, { holdAdmissions: [1] });
    const actor = await world.restore(migrateSnapshot(v1, 1, BLOG_MACHINE_VERSION));
    expect(leaf(actor)).toBe('PENDING');
    expect(ctx(actor).resumes).toBe('PUBLISHING');
    expect(world.admissionInputs).toEqual([{ blogId: 'blog-1', instanceId: 'store-1', text: false }]);

    await world.admit();
    expect(world.calls.article).toHaveLength(0);
    expect(world.calls.image).toHaveLength(0);
    expect(world.calls.publish.map((c) => c.input.image)).toEqual([IMAGE]);
    expect(leaf(actor)).toBe('DONE');
  });

  it('leaves version 1 snapshots outside `admitting` as they were (running, backoff, other statuses)', () => {
    for (const value of [{ GENERATING_IMAGE: 'running' }, { PUBLISHING: 'backoff' }, 'AWAITING_SELECTION', 'FAILED']) {
      const v1 = { ...v1Admitting('GENERATING_CONTENT'), value };
      expect(migrateSnapshot(v1, 1, 2)).toBe(v1);
    }
  });

  it('throws on something that is not a snapshot', () => {
    expect(() => migrateSnapshot(null, 1, 1)).toThrow(/not an object/);
    expect(() => migrateSnapshot('PENDING', 1, 1)).toThrow(/not an object/);
  });
});

/*
 * Transitions covered above (state, event → target), as the inspector records them:
 *   PENDING: admission done → the stage it resumes after a SELECT or RETRY (IDEAS, CONTENT, IMAGE, PUBLISHING) |
 *            GENERATING_IDEAS.running (topic) | GENERATING_CONTENT.running (idea); a blog keeps its slot from one
 *            stage to the next
 *   <stage>.running: stage done → next status; stage error → backoff (canRetry) | FAILED
 *   <stage>.backoff: backoff (wait) done → <stage>.running
 *   AWAITING_SELECTION: SELECT valid → PENDING (resumes content); SELECT invalid → (stays, emits rejected);
 *                       selectionTimeout done → FAILED
 *   FAILED: RETRY → AWAITING_SELECTION (a selection timed out) | PENDING (resumes the working stage that failed)
 *   CANCEL → CANCELLED from PENDING, AWAITING_SELECTION, FAILED and every <stage>.running|backoff
 *   ignored: SELECT outside AWAITING_SELECTION, RETRY outside FAILED, anything in DONE and CANCELLED
 */
describe('transition coverage', () => {
  function definedTransitions(): string[] {
    const out: string[] = [];
    const walk = (node: (typeof blogMachine)['root']) => {
      for (const [eventType, list] of node.transitions) {
        for (const t of list) out.push(`${node.id} --${eventType}--> ${(t.target ?? []).map((n) => n.id).join(',')}`);
      }
      Object.values(node.states).forEach(walk);
    };
    walk(blogMachine.root);
    return out;
  }

  it('exercised every transition of the statechart, and CANCEL from every non-final state', () => {
    if (taken.size === 0) return; // run alone (filtered): nothing to check
    const defined = definedTransitions();
    expect(defined.length).toBe(28);
    expect(defined.filter((t) => !taken.has(t))).toEqual([]);
    const nonFinal = [
      'PENDING',
      'AWAITING_SELECTION',
      'FAILED',
      ...STAGES.flatMap((s) => ['running', 'backoff'].map((sub) => `${s.status}.${sub}`)),
    ];
    expect(nonFinal.filter((s) => !cancelledFrom.has(s))).toEqual([]);
  });
});

afterAll(() => {
  sourceOf.clear();
});
