/** Composition root of `npm start`: config → logger → adapters → runtime → signals. */
import { loadConfig, redactConfig } from './config';
import { openBus } from './bus/open';
import { openDatabase } from './db/open';
import { ConfigError } from './errors';
import { createLogger } from './logger';
import { createProviders } from './providers/providers';
import { createRuntime } from './runtime/runtime';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`inkwell: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.INKWELL_LOG_LEVEL, config.INKWELL_NODE_ID);
  log.info({ config: redactConfig(config) }, 'starting');
  const database = await openDatabase(config, log);
  const bus = await openBus(config, log);
  const runtime = createRuntime({ config, log, database, bus, providers: createProviders(config, log, database.db) });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'draining');
    const force = setTimeout(() => {
      log.error('drain took longer than 14 s: exiting');
      process.exit(1);
    }, 14_000);
    force.unref();
    runtime.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await runtime.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`inkwell: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
