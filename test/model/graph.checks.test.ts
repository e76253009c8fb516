/**
 * Graph checks of the blog machine, on the definition and on the model's state graph (see `model.ts`):
 * - DONE is reachable from every non-final state without CANCEL (CANCEL reaches a final state from anywhere, so
 *   "some final state is reachable" would hold for any machine), and RETRY leaves FAILED whatever stage failed;
 * - every status change the machine can make is one the multi-process tests accept (LEGAL_CHANGES);
 * - every state where a blog waits (a store slot, a provider call, a backoff, a selection, a retry command) has a
 *   deadline, or is listed with the reason it has none (see WAITS at the end).
 */
import { describe, expect, it } from 'vitest';
import type { AnyStateNode } from 'xstate';
import { blogMachine } from '../../machines/blog.machine';
import { WORKING_STATUSES, type BlogStatus } from '../../machines/blog.types';
import { statusOf } from '../../src/runtime/blog.view';
import { LEGAL_CHANGES } from '../support/fleet.check';
import {
  definitionStates,
  guardName,
  MODEL_INPUTS,
  modelGraph,
  serializeState,
  statesOf,
  type InputKind,
} from './model';

const kinds = Object.keys(MODEL_INPUTS) as InputKind[];
type Edge = { event: { type: string }; state: Parameters<typeof serializeState>[0] };
const graphs = kinds.map((kind) => ({ kind, graph: modelGraph(kind) }));

function leaves(node: AnyStateNode = blogMachine.root): AnyStateNode[] {
  const children = Object.values(node.states);
  return children.length === 0 ? [node] : children.flatMap((c) => leaves(c));
}

const invokes = (node: AnyStateNode) =>
  node.invoke.map((i) => ({ id: i.id, src: typeof i.src === 'string' ? i.src : 'inline' }));
const ownEvents = (node: AnyStateNode) => [...node.transitions.keys()];

describe('blog machine graph', () => {
  it('reaches every state from the initial state', () => {
    const reached = new Set<string>();
    for (const { graph } of graphs)
      for (const { state } of Object.values(graph)) statesOf(state.value).forEach((id) => reached.add(id));
    expect([...reached].sort()).toEqual(definitionStates().sort());
  });

  it('can reach DONE from every non-final state without CANCEL', () => {
    for (const { kind, graph } of graphs) {
      const canFinish = new Set(
        Object.entries(graph)
          .filter(([, v]) => v.state.status === 'done' && v.state.value === 'DONE')
          .map(([key]) => key),
      );
      expect(canFinish.size, `${kind} blog never reaches DONE`).toBeGreaterThan(0);
      for (let grew = true; grew;) {
        grew = false;
        for (const [key, { transitions }] of Object.entries(graph)) {
          if (canFinish.has(key)) continue;
          if (
            Object.values(transitions as Record<string, Edge>).some(
              (t) => t.event.type !== 'CANCEL' && canFinish.has(serializeState(t.state)),
            )
          ) {
            canFinish.add(key);
            grew = true;
          }
        }
      }
      const stuck = Object.entries(graph)
        .filter(([key, v]) => v.state.status === 'active' && !canFinish.has(key))
        .map(([key]) => key);
      expect(stuck, `${kind} blog states that cannot reach DONE without CANCEL`).toEqual([]);
    }
  });

  it('leaves FAILED by RETRY, whatever stage failed', () => {
    const failedAt = new Set<string>();
    for (const { kind, graph } of graphs) {
      for (const [key, { state, transitions }] of Object.entries(graph)) {
        if (state.value !== 'FAILED') continue;
        failedAt.add(String(state.context.error?.stage));
        const retry = Object.values(transitions as Record<string, Edge>).find((t) => t.event.type === 'RETRY');
        expect(retry, `${kind} ${key}: RETRY does nothing`).toBeDefined();
        expect(retry!.state.value, `${kind} ${key}: RETRY stays in FAILED`).not.toBe('FAILED');
        expect(retry!.state.status).toBe('active');
      }
    }
    // Every stage that can fail was seen failing, so the loop above checked each of them.
    expect([...failedAt].sort()).toEqual([
      'AWAITING_SELECTION',
      'GENERATING_CONTENT',
      'GENERATING_IDEAS',
      'GENERATING_IMAGE',
      'PUBLISHING',
    ]);
  });

  it('changes status only in ways the event checks of the multi-process tests accept', () => {
    for (const { graph } of graphs)
      for (const { state, transitions } of Object.values(graph))
        for (const t of Object.values(transitions as Record<string, Edge>)) {
          const from = statusOf(state.value);
          const to = statusOf(t.state.value);
          if (from !== to) expect(LEGAL_CHANGES[from], `${from} → ${to}`).toContain(to);
        }
  });

  it('has exactly two final states, DONE and CANCELLED', () => {
    const finals = new Set<string>();
    for (const { graph } of graphs)
      for (const { state } of Object.values(graph)) if (state.status === 'done') finals.add(String(state.value));
    expect([...finals].sort()).toEqual(['CANCELLED', 'DONE']);
  });

  it('gives every state where a blog waits a deadline, or a documented reason to have none', () => {
    const waiting = leaves().filter((node) => node.type !== 'final');
    expect(waiting.map((n) => n.id).sort()).toEqual(Object.keys(WAITS).sort());
    for (const node of waiting) {
      const wait = WAITS[node.id]!;
      const invoked = invokes(node);
      if (wait.kind === 'timer') {
        // A durable deadline: the `wait` timer sleeps until the time kept in context, so it survives a restore.
        expect(
          invoked.map((i) => i.src),
          node.id,
        ).toEqual(['wait']);
        const input = node.invoke[0]!.input as (a: { context: Record<string, unknown> }) => { until: number };
        expect(input({ context: { [wait.field]: 4242 } }), `${node.id} sleeps until context.${wait.field}`).toEqual({
          until: 4242,
        });
        const done = node.transitions.get(`xstate.done.actor.${invoked[0]!.id}`)?.[0];
        expect(done?.target?.[0]?.id, `${node.id} when the deadline passes`).toBe(wait.then);
      } else if (wait.kind === 'provider') {
        // The call's deadline is the adapter's; when it passes the call rejects, and the error path either backs
        // off (a timer itself) or, attempts used up or not retryable, ends in FAILED.
        expect(
          invoked.map((i) => i.src),
          node.id,
        ).toEqual([wait.src]);
        const errorPaths = node.transitions.get(`xstate.error.actor.${invoked[0]!.id}`) ?? [];
        expect(
          errorPaths.map((t) => [guardName(t.guard ?? 'none'), t.target?.[0]?.id]),
          node.id,
        ).toEqual([
          ['canRetry', node.id.replace(/running$/, 'backoff')],
          ['none', 'blog.FAILED'],
        ]);
      } else if (wait.kind === 'slot') {
        expect(
          invoked.map((i) => i.src),
          node.id,
        ).toEqual(['admission']);
      } else {
        expect(invoked, node.id).toEqual([]);
        expect(ownEvents(node), node.id).toContain(wait.event);
      }
    }
    // The reason a slot wait needs no deadline: slots are held only by working blogs, and every working state
    // other than the slot wait itself is bounded (a timer or a provider call with a deadline).
    const working = waiting.filter((n) => WORKING_STATUSES.includes(n.id.split('.')[1] as BlogStatus));
    for (const node of working.filter((n) => WAITS[n.id]!.kind !== 'slot'))
      expect(['timer', 'provider'], node.id).toContain(WAITS[node.id]!.kind);
  });
});

type Wait =
  | { kind: 'timer'; field: 'retryAt' | 'selectionDeadline'; then: string }
  | { kind: 'provider'; src: string }
  | { kind: 'slot' }
  | { kind: 'command'; event: string };

const backoff = (stage: string): Wait => ({ kind: 'timer', field: 'retryAt', then: `blog.${stage}.running` });
const call = (src: string): Wait => ({ kind: 'provider', src });
const slot: Wait = { kind: 'slot' };

/**
 * Every state where a blog waits, on what, and what ends the wait. The deadlines are tested where they live:
 * - timers (`retryAt`, `selectionDeadline`): test/unit/blog.machine.test.ts ("waits exactly the backoff",
 *   "FAILS with SELECTION_TIMEOUT at exactly selectionDeadline", and both restored mid-wait),
 *   test/unit/deadline.actor.test.ts (the real timer), test/integration/crash.recovery.test.ts (armed by a killed
 *   process, fired on time by the next);
 * - provider calls: each adapter's request deadline (`INKWELL_PROVIDER_TIMEOUT_MS`; Replicate's prediction deadline
 *   too): openai.writer.test.ts ("fails retryably when the response is slower than timeoutMs", a hang),
 *   wix.publisher.test.ts ("a slow answer is a retryable WIX_TIMEOUT"), replicate.images.test.ts
 *   (PREDICTION_TIMEOUT, REPLICATE_TIMEOUT), providers.e2e.test.ts (a hang cut inside a running runtime). The
 *   offline adapters do local work only (no network, nothing to wait for);
 * - a store slot (PENDING, at creation and after a SELECT or RETRY): no deadline, on purpose. A slot is freed whenever a working blog leaves
 *   work, and every working state is bounded (checked above); failing a blog because its store is busy would turn
 *   load into failures;
 * - FAILED: no deadline, by contract (final until a `retry` command).
 */
const WAITS: Record<string, Wait> = {
  'blog.PENDING': slot,
  'blog.GENERATING_IDEAS.running': call('ideas'),
  'blog.GENERATING_IDEAS.backoff': backoff('GENERATING_IDEAS'),
  'blog.AWAITING_SELECTION': { kind: 'timer', field: 'selectionDeadline', then: 'blog.FAILED' },
  'blog.GENERATING_CONTENT.running': call('article'),
  'blog.GENERATING_CONTENT.backoff': backoff('GENERATING_CONTENT'),
  'blog.GENERATING_IMAGE.running': call('image'),
  'blog.GENERATING_IMAGE.backoff': backoff('GENERATING_IMAGE'),
  'blog.PUBLISHING.running': call('publish'),
  'blog.PUBLISHING.backoff': backoff('PUBLISHING'),
  'blog.FAILED': { kind: 'command', event: 'RETRY' },
};
