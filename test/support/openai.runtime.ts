/**
 * An embedded runtime (PGlite in memory, offline images and publishing) whose text goes to the fake OpenAI: for
 * tests of what OpenAI calls cost and when they may start. `stop()` ends the runtime and the fake, and removes the
 * data directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { composeRuntime } from '../../src/app/compose';
import type { Runtime } from '../../src/app/runtime';
import { startFakeOpenAi, type FakeOpenAi } from './fake.openai';

const KEY = 'sk-runtime-test-0123456789';

/** Starts the fake and a runtime on it with `env` on top; the runtime is not listening (use `http.inject`). */
export async function startOpenAiRuntime(
  env: Record<string, string> = {},
): Promise<{ runtime: Runtime; fake: FakeOpenAi; stop(): Promise<void> }> {
  const fake = await startFakeOpenAi({ apiKey: KEY });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-openai-'));
  const config = loadConfig({
    INKWELL_DATA_DIR: dataDir,
    INKWELL_LOG_LEVEL: 'silent',
    OPENAI_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    ...env,
  });
  const { runtime } = await composeRuntime({ config, database: await openPglite(undefined) });
  await runtime.start(false);
  return {
    runtime,
    fake,
    async stop() {
      await runtime.stop();
      await fake.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
