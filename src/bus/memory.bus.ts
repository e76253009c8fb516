/** The in-process bus of the embedded default: same subjects, no server. Commands arrive here only over HTTP. */
import { encodeJson, type Bus, type BusMessage } from './bus.port';
import { subjectMatcher } from './subjects';

/** Creates an in-process bus. */
export function createMemoryBus(): Bus {
  const subscribers = new Set<{
    matches: (tokens: readonly string[]) => boolean;
    handler: (msg: BusMessage) => void;
  }>();
  return {
    kind: 'memory',
    publish(subject, payload) {
      let msg: BusMessage | undefined; // encoded once, and only when somebody listens
      const tokens = subject.split('.');
      for (const s of subscribers) {
        if (s.matches(tokens)) s.handler((msg ??= { subject, data: encodeJson(payload) }));
      }
      return Promise.resolve();
    },
    subscribe(pattern, handler) {
      const entry = { matches: subjectMatcher(pattern), handler };
      subscribers.add(entry);
      return () => subscribers.delete(entry);
    },
    close() {
      subscribers.clear();
      return Promise.resolve();
    },
  };
}
