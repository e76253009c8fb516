/** The provider limiter's in-memory gates: the limits of one process (limiter.ts says how they work). */
import { ARRIVAL_SLACK_MS, leaseOnce, type Attempt, type Gate, type GateFactory } from './limiter.port';

/** In-memory gates: a counter for concurrency and a log of start times for the sliding window. */
export function createLocalGates(opts: { concurrency: number; rpm: number; windowMs: number }): GateFactory {
  return {
    gate(): Gate {
      let inFlight = 0;
      const starts: number[] = []; // ascending; starts[head..] are inside the window
      let head = 0;
      const prune = (now: number): void => {
        while (head < starts.length && (starts[head] as number) <= now - opts.windowMs) head += 1;
        if (head > 1024 && head * 2 > starts.length) {
          starts.splice(0, head);
          head = 0;
        }
      };
      return {
        tryAcquire(): Attempt {
          const now = Date.now();
          prune(now);
          if (inFlight >= opts.concurrency) return { ok: false, retryInMs: undefined };
          if (starts.length - head >= opts.rpm) {
            return { ok: false, retryInMs: (starts[head] as number) + opts.windowMs - now };
          }
          inFlight += 1;
          starts.push(now);
          return {
            ok: true,
            lease: leaseOnce(() => {
              inFlight -= 1;
              // Count the start from its latest possible arrival at the provider (see the header).
              const index = starts.indexOf(now, head);
              if (index < 0) return; // already out of the window
              starts.splice(index, 1);
              const arrived = Math.min(Date.now(), now + ARRIVAL_SLACK_MS);
              let at = starts.length;
              while (at > head && (starts[at - 1] as number) > arrived) at -= 1;
              starts.splice(at, 0, arrived);
            }),
          };
        },
        idle(): boolean {
          prune(Date.now());
          return inFlight === 0 && starts.length - head === 0;
        },
      };
    },
    async stop() {},
  };
}
