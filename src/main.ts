/**
 * Entry of `npm start`. Stop signals are watched before anything else loads (loading takes a second or two), so a
 * SIGTERM or SIGINT at any point of start-up stops cleanly; the composition root is `serve.ts`.
 */
import { EXIT, watchStopSignals } from './runtime/shutdown';

const stop = watchStopSignals({ deadlineMs: 14_000, repeatGapMs: 1_000 });
try {
  const { serve } = await import('./serve');
  process.exit(await serve(stop));
} catch (err) {
  process.stderr.write(`inkwell: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT.failed);
}
