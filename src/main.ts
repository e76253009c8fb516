/**
 * Entry of `npm start`. Stop signals are watched before anything else loads (loading takes a second or two), so a
 * SIGTERM or SIGINT at any point of start-up stops cleanly; `app/serve.ts` runs the composition root (`app/compose.ts`).
 */
import { EXIT, watchStopSignals } from './runtime/shutdown';

/** How long a signal-driven exit waits for late copies of the signal (npm forwards them within milliseconds). */
const LINGER_MS = 250;

const stop = watchStopSignals({ deadlineMs: 14_000, repeatGapMs: 1_000 });
try {
  const { serve } = await import('./app/serve');
  const code = await serve(stop);
  // After a signal, linger a moment before exiting: npm forwards each copy of the signal it receives to us, late when
  // it is busy, and a copy landing while node tears down its signal handlers would end us by that signal instead of
  // with our exit status (which npm then repeats). Seen in CI: drained and "stopped", yet exit SIGTERM.
  if (stop.signal.aborted) await new Promise((resolve) => setTimeout(resolve, LINGER_MS));
  process.exit(code);
} catch (err) {
  process.stderr.write(`inkwell: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT.failed);
}
