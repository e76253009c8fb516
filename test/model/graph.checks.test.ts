/**
 * Graph checks of the blog machine, on the definition and on the model's state graph (see `model.ts`).
 *
 * "Waits on the outside world": a leaf state that invokes a stage actor (`ideas`, `article`, `image`, `publish`:
 * a provider call) or takes SELECT (a person). Such a state must have a way out that does not depend on the
 * outside world answering well: an invoked `wait` timer (AWAITING_SELECTION's selection timeout), or an onError
 * path that ends in FAILED once attempts are used up (the stage actors own their call deadlines and reject on
 * them; the machine bounds the attempts). `admission` is not the outside world: it is this runtime's slot queue,
 * and slots are held only by working blogs, whose every state is itself bounded; CANCEL leaves it too.
 */
import { describe, expect, it } from 'vitest';
import type { AnyStateNode } from 'xstate';
import { blogMachine } from '../../machines/blog.machine';
import { statusOf } from '../../src/runtime/blog.view';
import { LEGAL_CHANGES } from '../support/fleet.check';
import { definitionStates, MODEL_INPUTS, modelGraph, serializeState, statesOf, type InputKind } from './model';

const kinds = Object.keys(MODEL_INPUTS) as InputKind[];
type Edge = { event: { type: string }; state: Parameters<typeof serializeState>[0] };
const graphs = kinds.map((kind) => ({ kind, graph: modelGraph(kind) }));

function leaves(node: AnyStateNode = blogMachine.root): AnyStateNode[] {
  const children = Object.values(node.states);
  return children.length === 0 ? [node] : children.flatMap((c) => leaves(c));
}

const STAGE_SOURCES = ['ideas', 'article', 'image', 'publish'];
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

  it('gives every state that waits on the outside world a timeout or a bounded way out', () => {
    const waiting = leaves().filter(
      (node) => invokes(node).some((i) => STAGE_SOURCES.includes(i.src)) || ownEvents(node).includes('SELECT'),
    );
    expect(waiting.map((n) => n.id).sort()).toEqual([
      'blog.AWAITING_SELECTION',
      'blog.GENERATING_CONTENT.running',
      'blog.GENERATING_IDEAS.running',
      'blog.GENERATING_IMAGE.running',
      'blog.PUBLISHING.running',
    ]);
    for (const node of waiting) {
      const timer = invokes(node).find((i) => i.src === 'wait');
      const errorPaths = node.invoke.flatMap((i) => node.transitions.get(`xstate.error.actor.${i.id}`) ?? []);
      const givesUp = errorPaths.some((t) => !t.guard && (t.target ?? []).some((n) => n.id === 'blog.FAILED'));
      const retries = errorPaths.filter((t) => t.guard === 'canRetry');
      expect(timer !== undefined || givesUp, `${node.id} has no timeout and no way out on error`).toBe(true);
      if (timer)
        expect(node.transitions.get(`xstate.done.actor.${timer.id}`)?.[0]?.target?.[0]?.id).toBe('blog.FAILED');
      // a retry goes through `backoff`, which is a `wait` timer itself
      for (const t of retries) {
        const backoff = t.target?.[0];
        expect(backoff && invokes(backoff).map((i) => i.src)).toEqual(['wait']);
      }
    }
  });
});
