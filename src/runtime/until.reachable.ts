/**
 * Riding out an outage of a service Inkwell runs on. A call that fails because the server cannot be reached (see
 * `isConnectionFailure`) is made again, with backoff, until it goes through; any other error is the caller's at
 * once. Wrapped around the stage actors' own database work (provider refs), so that PostgreSQL restarting or
 * failing over makes a stage wait, never fail: only provider failures spend a blog's attempts. Every call wrapped
 * this way must be safe to repeat (a read, an upsert).
 */
import { isConnectionFailure, type InfrastructureService } from '../errors';
import type { Logger } from '../logger';

/** How to wait, and whom to tell. */
export interface UntilReachableOptions {
  service: InfrastructureService;
  /** Called on each failed try (`tries` from 1), to log it; loud logging is the caller's to throttle. */
  onWait?: (error: unknown, tries: number, downForMs: number) => void;
  /** First retry delay, doubling up to `maxDelayMs`; defaults 50 ms and 1 s (a returning server is seen fast). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** Runs `fn` until it does not fail for lack of the service; resolves or rejects with its first other outcome. */
export async function untilReachable<T>(fn: () => Promise<T>, opts: UntilReachableOptions): Promise<T> {
  const base = opts.baseDelayMs ?? 50;
  const max = opts.maxDelayMs ?? 1_000;
  let started: number | undefined;
  for (let tries = 1; ; tries++) {
    try {
      return await fn();
    } catch (error) {
      if (!isConnectionFailure(error)) throw error;
      started ??= Date.now();
      opts.onWait?.(error, tries, Date.now() - started);
      const delay = Math.min(max, base * 2 ** Math.min(tries - 1, 16));
      await new Promise((resolve) => setTimeout(resolve, delay * (0.8 + Math.random() * 0.4)));
    }
  }
}

/** `port` with every method run through `untilReachable` (methods added to the port later are covered too). */
export function waitingForService<T extends object>(port: T, opts: UntilReachableOptions): T {
  return new Proxy(port, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        untilReachable(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args), opts);
    },
  });
}

/** An `onWait` that logs an outage at once and then every `everyMs` while it lasts, not once per failed call. */
export function logWaits(
  log: Logger,
  service: InfrastructureService,
  everyMs = 10_000,
): UntilReachableOptions['onWait'] {
  let last = 0;
  return (error, tries, downForMs) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    const err = error instanceof Error ? error.message : String(error);
    log.warn({ service, tries, downForMs, err }, `${service} unreachable: stage work waits for it (no attempt spent)`);
  };
}
