/**
 * `npm run demo` on the embedded default: no servers, no keys. It creates blogs for several stores, finishes
 * them all, ends with a summary, and leaves the published pages where it says.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runToExit } from '../support/process';

/** Runs the demo to its exit without any server URL or provider key in its environment. */
function runDemo(args: string[], env: Record<string, string>, timeoutMs: number) {
  const unset = ['DATABASE_URL', 'NATS_URL', 'REDIS_URL', 'OPENAI_API_KEY', 'REPLICATE_API_TOKEN', 'WIX_APP_ID'];
  return runToExit('src/demo/demo.ts', args, { env, unset, timeoutMs });
}

describe('npm run demo (embedded PGlite, no servers)', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-demo-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('finishes 6 blogs for 2 stores, prints a "done 6" summary and leaves an index and 6 post pages', async () => {
    const { code, stdout, stderr } = await runDemo(
      ['--blogs', '6', '--stores', '2', '--scale', '0'],
      { INKWELL_DATA_DIR: dataDir },
      100_000,
    );
    const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
    expect(code, output).toBe(0);
    expect(stdout, output).toMatch(/\bdone 6\b/);
    expect(stdout).toContain('embedded PGlite');
    expect(stdout).toContain(path.join(dataDir, 'published'));

    const published = path.join(dataDir, 'published');
    expect((await stat(path.join(published, 'store-1', 'index.html'))).isFile()).toBe(true);
    const stores = (await readdir(published)).filter((name) => name.startsWith('store-')).sort();
    expect(stores).toEqual(['store-1', 'store-2']);
    let pages = 0;
    for (const store of stores) {
      const posts = await readdir(path.join(published, store, 'posts'));
      pages += posts.filter((name) => name.endsWith('.html')).length;
    }
    expect(pages).toBe(6);
  }, 120_000);
});
