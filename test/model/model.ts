/**
 * The blog machine's test model, derived from the machine itself with xstate/graph.
 *
 * - A model state is what decides the machine's future: state value, failed attempts of the stage, the stage a
 *   FAILED blog failed at, the stage a PENDING blog resumes once admitted, and whether the request came with an idea. With `maxAttempts: 2` that set is finite.
 * - A model event is whatever the outside world can do in that state: the done or error (retryable or not) of the
 *   invoke that is running, a timer reaching its deadline (`backoff`, `selectionTimeout`), SELECT in and out of
 *   range, RETRY, CANCEL.
 * - Paths: for every edge of the adjacency map, the shortest path to its source followed by the edge itself, so the
 *   paths cover every reachable model state and every edge between them.
 * - Coverage is measured against the definition: every state node, and every (leaf state, transition) pair a
 *   non-final leaf can take (its own and its ancestors' transitions, each guarded alternative on its own).
 */
import type { ActorLogic, AnyStateNode, AnyTransitionDefinition } from 'xstate';
import { getAdjacencyMap, getShortestPaths, type AdjacencyMap } from 'xstate/graph';
import { blogMachine, type BlogEvent, type BlogInput } from '../../machines/blog.machine';
import type { BlogSettings, Idea } from '../../machines/blog.types';

export const T0 = 1_700_000_000_000;
/** Two attempts per stage: one retry, then exhaustion. */
export const MODEL_SETTINGS: BlogSettings = { maxAttempts: 2, retryBaseMs: 1000, selectionTimeoutMs: 60_000 };
export const IDEAS: Idea[] = [
  { title: 'Boots for snow', summary: 'Grip and warmth' },
  { title: 'Wool socks', summary: 'Why merino' },
];
const GIVEN_IDEA: Idea = { title: 'Ten winter looks', summary: 'From city to slope' };

/** The two kinds of blog: they differ in where PENDING goes. */
export const MODEL_INPUTS = {
  topic: (blogId: string): BlogInput => ({
    blogId,
    instanceId: 'store-1',
    request: { topic: 'Winter boots', keywords: ['boots'] },
    settings: MODEL_SETTINGS,
  }),
  idea: (blogId: string): BlogInput => ({
    blogId,
    instanceId: 'store-1',
    request: { idea: GIVEN_IDEA, keywords: [] },
    settings: MODEL_SETTINGS,
  }),
} as const;
export type InputKind = keyof typeof MODEL_INPUTS;

/** Stage actors by the status that invokes them. */
export const STAGE_ACTORS = {
  GENERATING_IDEAS: 'ideas',
  GENERATING_CONTENT: 'article',
  GENERATING_IMAGE: 'image',
  PUBLISHING: 'publish',
} as const;
export type StageActor = (typeof STAGE_ACTORS)[keyof typeof STAGE_ACTORS];

/** Outputs the stubs and the model give each stage actor. */
export const STAGE_RESULTS: Record<StageActor, unknown> = {
  ideas: IDEAS,
  article: { title: 'Boots', excerpt: 'Warm feet', markdown: '# Boots', html: '<h1>Boots</h1>' },
  image: { url: 'https://img.example/boots.png', alt: 'Boots in snow' },
  publish: { id: 'post-1' },
};

/** A model event: a command, or the done/error event of an invoked actor (typed loosely on purpose). */
export type ModelEvent =
  | BlogEvent
  | { type: `xstate.done.actor.${string}`; output?: unknown }
  | { type: `xstate.error.actor.${string}`; error: { code: string; message: string; retryable: boolean; at: number } };

/** What a path must end in (and pass through): the model state. */
export interface Expected {
  value: unknown;
  attempts: number;
  failedAt: string | null;
  /** The stage PENDING leads to once admitted, after a SELECT or a RETRY. */
  resumes: string | null;
}

/** One generated test path. */
export interface ModelPath {
  name: string;
  kind: InputKind;
  steps: Array<{ event: ModelEvent; expected: Expected }>;
}

type BlogSnapshot = ReturnType<typeof blogMachine.getInitialSnapshot>;
/** The machine as graph logic (xstate/graph's ActorLogic typing does not accept a StateMachine directly). */
const graphLogic = blogMachine as unknown as ActorLogic<BlogSnapshot, BlogEvent, BlogInput>;

/** `GENERATING_IDEAS.running`-style name of a state value's leaf. */
export function leafOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, sub] = Object.entries(value as Record<string, unknown>)[0] ?? ['?', undefined];
  return sub === undefined ? key : `${key}.${leafOf(sub)}`;
}

/** The model state of a snapshot. */
export function expectedOf(snapshot: {
  value: unknown;
  context: { attempts: number; error?: { stage: string }; resumes?: string };
}) {
  return {
    value: snapshot.value,
    attempts: snapshot.context.attempts,
    failedAt: snapshot.context.error?.stage ?? null,
    resumes: snapshot.context.resumes ?? null,
  };
}

const stageError = (actor: string, retryable: boolean) => ({
  type: `xstate.error.actor.${actor}` as const,
  error: { code: retryable ? 'RATE_LIMITED' : 'CONTENT_POLICY', message: `${actor} failed`, retryable, at: T0 },
});

/** The events that matter in `snapshot`. */
export function modelEvents(snapshot: BlogSnapshot): ModelEvent[] {
  if (snapshot.status !== 'active') return [];
  const leaf = leafOf(snapshot.value);
  const [status, sub] = leaf.split('.') as [string, string | undefined];
  const events: ModelEvent[] = [{ type: 'CANCEL', at: T0 }];
  if (status === 'PENDING') events.push({ type: 'xstate.done.actor.admission' });
  if (sub === 'backoff') events.push({ type: 'xstate.done.actor.backoff' });
  if (sub === 'running') {
    const actor = STAGE_ACTORS[status as keyof typeof STAGE_ACTORS];
    events.push(
      { type: `xstate.done.actor.${actor}`, output: { result: STAGE_RESULTS[actor], at: T0 } },
      stageError(actor, true),
      stageError(actor, false),
    );
  }
  if (status === 'AWAITING_SELECTION') {
    events.push(
      { type: 'SELECT', ideaIndex: 0, at: T0 },
      { type: 'SELECT', ideaIndex: IDEAS.length, at: T0 },
      { type: 'xstate.done.actor.selectionTimeout' },
    );
  }
  if (status === 'FAILED') events.push({ type: 'RETRY', at: T0 });
  return events;
}

/** The model state key of a snapshot. */
export const serializeState = (snapshot: BlogSnapshot) =>
  JSON.stringify({ ...expectedOf(snapshot), status: snapshot.status });
const serializeEvent = (event: ModelEvent) =>
  JSON.stringify({ type: event.type, ...('ideaIndex' in event ? { ideaIndex: event.ideaIndex } : {}) }) +
  ('error' in event ? String(event.error.retryable) : '');

/** Every state node but the root, by id (`blog.GENERATING_IDEAS.running`). */
export function definitionStates(root: AnyStateNode = blogMachine.root): string[] {
  return Object.values(root.states).flatMap((node) => [node.id, ...definitionStates(node)]);
}

/** Ids of the nodes of a state value: the status and, for working stages, the sub-state. */
export function statesOf(value: unknown): string[] {
  const parts = leafOf(value).split('.');
  return parts.map((_, i) => ['blog', ...parts.slice(0, i + 1)].join('.'));
}

/** A guard's name and params, as written in the machine. */
export function guardName(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (guard && typeof guard === 'object' && 'type' in guard) {
    const params =
      'params' in guard && guard.params !== undefined
        ? `(${typeof guard.params === 'string' ? guard.params : JSON.stringify(guard.params)})`
        : '';
    return `${String(guard.type)}${params}`;
  }
  return 'inline guard';
}

function transitionKey(leafId: string, t: AnyTransitionDefinition) {
  const alternatives = t.source.transitions.get(t.eventType) ?? [];
  const index = alternatives.indexOf(t);
  const guard = t.guard ? ` [${guardName(t.guard)}]` : '';
  const label = alternatives.length > 1 && !t.guard ? ' [else]' : guard;
  return `${leafId}: ${t.source.id} --${t.eventType}#${index}${label}--> ${(t.target ?? []).map((n) => n.id).join(',') || '(none)'}`;
}

/** Every (non-final leaf, transition) pair of the definition. */
export function definitionTransitions(root: AnyStateNode = blogMachine.root): string[] {
  const keys: string[] = [];
  const walk = (node: AnyStateNode) => {
    const children = Object.values(node.states);
    if (children.length > 0) return children.forEach(walk);
    if (node.type === 'final') return;
    for (let n: AnyStateNode | undefined = node; n; n = n.parent) {
      for (const alternatives of n.transitions.values())
        for (const t of alternatives) keys.push(transitionKey(node.id, t));
    }
  };
  walk(root);
  return keys;
}

/** The definition transitions `event` takes from `snapshot` (guards evaluated). */
export function transitionsTaken(snapshot: BlogSnapshot, event: ModelEvent): string[] {
  const leafId = statesOf(snapshot.value).at(-1) ?? 'blog';
  return blogMachine.getTransitionData(snapshot, event as BlogEvent).map((t) => transitionKey(leafId, t));
}

/** Same, from the source node and event type an inspector reports (for checking executions). */
export function transitionKeyOf(leafId: string, t: AnyTransitionDefinition): string {
  return transitionKey(leafId, t);
}

/** Traversal options of the model for one kind of blog. */
export function traversalOptions(kind: InputKind) {
  return {
    input: MODEL_INPUTS[kind]('model'),
    events: (s: BlogSnapshot) => modelEvents(s) as BlogEvent[],
    serializeState,
    serializeEvent: serializeEvent as (e: BlogEvent) => string,
  };
}

/** The model's state graph for one kind of blog: model state key → event → next model state. */
export function modelGraph(kind: InputKind): AdjacencyMap<BlogSnapshot, BlogEvent> {
  const options = traversalOptions(kind);
  return getAdjacencyMap(graphLogic, options);
}

/** Derives the paths and their coverage from the machine. */
export function buildModel() {
  const paths: ModelPath[] = [];
  const states = new Set<string>();
  const transitions = new Set<string>();
  for (const kind of Object.keys(MODEL_INPUTS) as InputKind[]) {
    const options = traversalOptions(kind);
    const shortest = new Map(getShortestPaths(blogMachine, options).map((p) => [serializeState(p.state), p]));
    const adjacency = getAdjacencyMap(graphLogic, options);
    for (const [key, { state, transitions: edges }] of Object.entries(adjacency)) {
      const prefix = shortest.get(key);
      if (!prefix) throw new Error(`no path reaches ${key}`);
      statesOf(state.value).forEach((id) => states.add(id));
      // the first step of a shortest path is the initial state (an xstate.init event), not something to drive
      const head = prefix.steps.slice(1).map((s) => ({ event: s.event, expected: expectedOf(s.state) }));
      for (const { event, state: next } of Object.values(
        edges as Record<string, { event: BlogEvent; state: BlogSnapshot }>,
      )) {
        transitionsTaken(state, event).forEach((t) => transitions.add(t));
        const steps = [...head, { event: event as ModelEvent, expected: expectedOf(next) }];
        paths.push({ name: `${kind}: ${steps.map((s) => describeEvent(s.event)).join(' → ')}`, kind, steps });
      }
    }
  }
  return { paths, states, transitions };
}

/** A short name for an event in a path's name. */
export function describeEvent(event: ModelEvent): string {
  if ('error' in event)
    return `${event.type.replace('xstate.error.actor.', '')}!${event.error.retryable ? 'retryable' : 'fatal'}`;
  if (event.type === 'SELECT') return `SELECT(${event.ideaIndex})`;
  return event.type.replace('xstate.done.actor.', '');
}
