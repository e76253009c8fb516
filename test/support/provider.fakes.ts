/**
 * The three HTTP fakes the real OpenAI, Replicate and Wix adapters are pointed at, for tests that run `npm start` on
 * the path users run, and the environment that points them there (as a user would set it, keyed `sk-<name>` and
 * `r8-<name>`). `close()` stops all three.
 */
import { startFakeOpenAi, type FakeOpenAi } from './fake.openai';
import { startFakeReplicate, type FakeReplicate, type FakeReplicateOptions } from './fake.replicate';
import { startFakeWix, type FakeWix } from './fake.wix';

export interface ProviderFakes {
  openai: FakeOpenAi;
  replicate: FakeReplicate;
  wix: FakeWix;
  /** The adapters' keys and base URLs, and a default Wix member (no create needs its own). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Starts the fakes; `replicate` adds to the fake Replicate's options (its token is always `r8-<name>`). */
export async function startProviderFakes(
  name: string,
  replicate: Omit<FakeReplicateOptions, 'token'> = {},
): Promise<ProviderFakes> {
  const keys = { openai: `sk-${name}`, replicate: `r8-${name}` };
  const [openai, fakeReplicate, wix] = await Promise.all([
    startFakeOpenAi({ apiKey: keys.openai }),
    startFakeReplicate({ ...replicate, token: keys.replicate }),
    startFakeWix(),
  ]);
  return {
    openai,
    replicate: fakeReplicate,
    wix,
    env: {
      OPENAI_API_KEY: keys.openai,
      OPENAI_BASE_URL: openai.url,
      REPLICATE_API_TOKEN: keys.replicate,
      REPLICATE_BASE_URL: fakeReplicate.url,
      WIX_APP_ID: wix.appId,
      WIX_APP_SECRET: wix.appSecret,
      WIX_BASE_URL: wix.url,
      WIX_DEFAULT_MEMBER_ID: 'member-1',
    },
    async close() {
      await Promise.all([openai.close(), fakeReplicate.close(), wix.close()]);
    },
  };
}
