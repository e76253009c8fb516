/**
 * The `wait` actor the blog machine invokes for its timers (selection timeout, retry backoff): done once the clock
 * reaches `input.until` (ms since epoch), nothing to undo but a timer when it is stopped first.
 *
 * It behaves, persists and restores exactly like `fromPromise(() => sleep until)` (same snapshot shape, so
 * snapshots written either way restore either way), but without an AbortController. XState gives every promise
 * actor one and aborts it on stop, and in Node 20 an abort builds a DOMException with a stack trace: a selection
 * stops its blog's timeout timer, so that was about 5 % of the CPU a selection costs.
 */
import type { ActorLogic, EventObject, PromiseActorLogic, PromiseSnapshot } from 'xstate';

/** The event types of XState's promise logic, which `PromiseSnapshot` consumers (and the inspector) know. */
const RESOLVE = 'xstate.promise.resolve';
const STOP = 'xstate.stop';

type Input = { until: number };
type Snapshot = PromiseSnapshot<void, Input>;

/** Node's setTimeout limit: longer waits (a week-long selection timeout) are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Creates the timer logic; `now` is the clock deadlines are compared with. */
export function fromDeadline(now: () => number): PromiseActorLogic<void, Input> {
  const timers = new WeakMap<object, NodeJS.Timeout>();
  const logic: ActorLogic<Snapshot, EventObject, Input> = {
    transition(snapshot, event, { self }) {
      if (snapshot.status !== 'active') return snapshot;
      if (event.type === RESOLVE) return { ...snapshot, status: 'done', output: undefined, input: undefined };
      if (event.type === STOP) {
        clearTimeout(timers.get(self));
        timers.delete(self);
        return { ...snapshot, status: 'stopped', input: undefined };
      }
      return snapshot;
    },
    start(snapshot, { self }) {
      if (snapshot.status !== 'active') return;
      const until = snapshot.input?.until ?? 0;
      const done = () => {
        if (self.getSnapshot().status === 'active') self.send({ type: RESOLVE });
      };
      const tick = () => {
        const left = until - now();
        if (left > 0) timers.set(self, setTimeout(tick, Math.min(left, MAX_TIMEOUT_MS)));
        else {
          timers.delete(self);
          done();
        }
      };
      // A deadline already past resolves in a microtask, as the promise did: never inside the parent's transition.
      if (until - now() <= 0) queueMicrotask(done);
      else tick();
    },
    getInitialSnapshot: (_, input) => ({ status: 'active', output: undefined, error: undefined, input }),
    getPersistedSnapshot: (snapshot) => snapshot,
    restoreSnapshot: (snapshot) => snapshot as Snapshot,
  };
  return logic;
}
