/** The stop-signal policy of `npm start`: one drain whatever repeats, a forced stop only on purpose, a deadline. */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EXIT, watchStopSignals, type EarlySignal, type StopSignalOptions } from '../../src/runtime/shutdown';

/** A watcher on a fake process, with the exits and stderr lines it produced. */
function watch(opts: Partial<StopSignalOptions> = {}) {
  const target = new EventEmitter();
  const exits: number[] = [];
  const lines: string[] = [];
  const stop = watchStopSignals({
    deadlineMs: 14_000,
    repeatGapMs: 1_000,
    exit: (code) => void exits.push(code),
    now: () => Date.now(),
    stderr: (line) => void lines.push(line),
    target: target as unknown as NodeJS.Process,
    early: () => [],
    ...opts,
  });
  const send = (signal: NodeJS.Signals) => void target.emit(signal, signal);
  return { stop, send, exits, lines };
}

describe('stop signals', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('starts one drain on the first SIGTERM and ignores every SIGTERM after it', async () => {
    const w = watch();
    expect(w.stop.signal.aborted).toBe(false);
    w.send('SIGTERM');
    expect(w.stop.signal.aborted).toBe(true);
    await expect(w.stop.requested).resolves.toBe('SIGTERM');
    for (const gap of [0, 30, 2_000, 5_000]) {
      vi.advanceTimersByTime(gap);
      w.send('SIGTERM');
    }
    expect(w.exits).toEqual([]);
  });

  it('takes a SIGINT that comes again within the gap as the same Ctrl-C (npm relays a copy)', () => {
    const w = watch();
    w.send('SIGINT');
    vi.advanceTimersByTime(20);
    w.send('SIGINT');
    vi.advanceTimersByTime(900);
    w.send('SIGINT');
    expect(w.exits).toEqual([]);
  });

  it('forces an exit with 130 and one line on a SIGINT a second or more after the first', () => {
    const w = watch();
    w.send('SIGINT');
    vi.advanceTimersByTime(1_000);
    w.send('SIGINT');
    expect(w.exits).toEqual([EXIT.forced]);
    expect(w.lines).toHaveLength(1);
    expect(w.lines[0]).toMatch(/^inkwell: second SIGINT.*\(exit 130\)$/);
  });

  it('forces on a SIGINT after a SIGTERM-started drain only once a SIGINT was seen before', () => {
    const w = watch();
    w.send('SIGTERM');
    vi.advanceTimersByTime(3_000);
    w.send('SIGINT');
    expect(w.exits).toEqual([]);
    vi.advanceTimersByTime(1_500);
    w.send('SIGINT');
    expect(w.exits).toEqual([EXIT.forced]);
  });

  it('exits 1 with one line when the drain outlasts its deadline, counted from the first signal', () => {
    const w = watch();
    w.send('SIGTERM');
    vi.advanceTimersByTime(13_999);
    w.send('SIGTERM');
    expect(w.exits).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(w.exits).toEqual([EXIT.failed]);
    expect(w.lines).toEqual(['inkwell: drain took longer than 14 s: exiting (exit 1)']);
  });

  it('takes over signals recorded before it existed, with the time they came', async () => {
    const early: EarlySignal[] = [
      { signal: 'SIGINT', at: Date.now() - 1_500 },
      { signal: 'SIGINT', at: Date.now() - 1_499 },
    ];
    const w = watch({ early: () => early });
    expect(w.stop.signal.aborted).toBe(true);
    await expect(w.stop.requested).resolves.toBe('SIGINT');
    expect(w.exits).toEqual([]);
    w.send('SIGINT'); // 1.5 s after the first: Ctrl-C pressed again
    expect(w.exits).toEqual([EXIT.forced]);
    vi.advanceTimersByTime(12_500);
    expect(w.exits).toEqual([EXIT.forced, EXIT.failed]);
  });
});
