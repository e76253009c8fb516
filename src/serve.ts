/** Composition root of `npm start`: config → logger → adapters → runtime, run until a stop signal, then drained. */
import { loadConfig, redactConfig } from './config';
import { openBus } from './bus/open';
import { openDatabase } from './db/open';
import { ConfigError } from './errors';
import { createLogger } from './logger';
import { createProviders } from './providers/providers';
import { createRuntime } from './runtime/runtime';
import { EXIT, type StopSignals } from './runtime/shutdown';

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
  const log = createLogger(config.INKWELL_LOG_LEVEL, config.INKWELL_NODE_ID);
  stop.useLogger(log);
  if (stop.signal.aborted) {
    log.info('stopped before starting');
    return EXIT.drained;
  }
  log.info({ config: redactConfig(config) }, 'starting');
  const database = await openDatabase(config, log);
  const bus = await openBus(config, log);
  const runtime = createRuntime({ config, log, database, bus, providers: createProviders(config, log, database.db) });
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
