/** `npm start` after its signals are watched: the composition root's runtime, run until a stop signal, then drained. */
import { loadConfig } from '../config';
import { ConfigError } from '../errors';
import { EXIT, type StopSignals } from '../runtime/shutdown';
import { composeRuntime } from './compose';

/** Runs the runtime until `stop` is requested; resolves with the exit status. Start-up failures reject. */
export async function serve(stop: StopSignals): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`inkwell: ${err.message}\n`);
    return EXIT.badConfig;
  }
  const composed = await composeRuntime({ config, onLogger: (log) => stop.useLogger(log), signal: stop.signal });
  if (!composed) return EXIT.drained;
  const { log, runtime } = composed;
  // A stop during start-up ends it at the next phase; the drain below then closes whatever was opened.
  await runtime.start(true, stop.signal);
  await stop.requested;
  try {
    await runtime.stop();
  } catch (err) {
    log.error({ err }, 'drain failed');
    process.stderr.write(`inkwell: drain failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.failed;
  }
  log.info('stopped');
  return EXIT.drained;
}
