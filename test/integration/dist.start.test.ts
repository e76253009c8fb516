/**
 * The compiled build (`npm run build`, then `node dist/src/main.js`, as the Docker image runs it): plain node, no
 * TypeScript loader, against PostgreSQL and NATS. It migrates from the copied drizzle/ folder, serves the dashboard's
 * copied assets and the API documents, takes a blog to DONE and exits 0 on SIGTERM; and `npm start` is that build,
 * run by plain node. The tests' global setup (test/support/dist.setup.ts) builds dist/ when it is missing or stale;
 * should it still be missing, this file skips, saying so (outside CI).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { http, killGroup, spawnNpmStart, until } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const ROOT = new URL('../..', import.meta.url).pathname;
const MAIN = path.join(ROOT, 'dist/src/main.js');
const built = existsSync(MAIN);
if (!built && process.env.CI === 'true')
  throw new Error(`${MAIN} is missing: CI runs \`npm run build\` before the tests`);
if (!built) console.warn(`skipping the compiled build's test: run \`npm run build\` first (${MAIN} is missing)`);
const nats = built ? await requireNats() : undefined;

await describeWithPostgres('the compiled build, run by plain node (needs PostgreSQL and NATS)', (db) => {
  let dataDir: string;
  const streams = { cmd: `T_${nats?.prefix}_CMD`, evt: `T_${nats?.prefix}_EVT` };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-dist-'));
  });
  afterAll(async () => {
    if (nats) {
      const nc = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(streams.cmd).catch(() => undefined);
      await jsm.streams.delete(streams.evt).catch(() => undefined);
      await nc.close();
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(!built || !nats)('starts, takes a blog to DONE, serves its documents and exits 0 on SIGTERM', async () => {
    const env: Record<string, string | undefined> = { ...process.env };
    for (const name of ['NODE_OPTIONS', 'OPENAI_API_KEY', 'REPLICATE_API_TOKEN', 'WIX_APP_ID', 'REDIS_URL'])
      delete env[name];
    const proc = spawn(process.execPath, [MAIN], {
      cwd: ROOT,
      env: {
        ...env,
        DATABASE_URL: db().url,
        NATS_URL: nats!.url,
        INKWELL_SUBJECT_PREFIX: nats!.prefix,
        INKWELL_COMMANDS_STREAM: streams.cmd,
        INKWELL_EVENTS_STREAM: streams.evt,
        INKWELL_DATA_DIR: dataDir,
        INKWELL_LOG_LEVEL: 'info',
        PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    proc.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        createInterface({ input: proc.stdout }).on('line', (line) => {
          output.push(line);
          const msg = JSON.parse(line) as { msg?: string; port?: number };
          if (msg.msg === 'listening' && msg.port) resolve(msg.port);
        });
        void exited.then((code) => reject(new Error(`exited (${code}) before listening:\n${output.join('\n')}`)));
      });
      const base = `http://127.0.0.1:${port}`;
      expect((await http(base, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
      expect((await http(base, 'GET', '/api/openapi.json')).body.openapi).toBe('3.1.0');
      const page = await fetch(`${base}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<html');
      const created = await http(base, 'POST', '/api/blogs', { instanceId: 'dist-store', idea: { title: 'Built' } });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      const blogId = created.body.blogId as string;
      await until('the blog to be DONE', async () => {
        const res = await http(base, 'GET', `/api/blogs/${blogId}`);
        return res.body.status === 'DONE' ? res.body : undefined;
      });
      proc.kill('SIGTERM');
      expect(await exited, output.join('\n')).toBe(0);
    } finally {
      proc.kill('SIGKILL');
    }
  });

  it.skipIf(!built)('`npm start` runs that build with plain node, no TypeScript loader, and stops with 0', async () => {
    const run = spawnNpmStart({
      DATABASE_URL: db().url,
      NATS_URL: '',
      REDIS_URL: '',
      NODE_OPTIONS: '',
      OPENAI_API_KEY: '',
      REPLICATE_API_TOKEN: '',
      WIX_APP_ID: '',
      INKWELL_DATA_DIR: dataDir,
      PORT: '0',
    });
    try {
      await run.logged('listening');
      const node = await run.child();
      const argv = (await readFile(`/proc/${node}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      expect(argv.slice(1)).toEqual([
        '--require',
        './dist/src/runtime/early.signals.cjs',
        '--enable-source-maps',
        'dist/src/main.js',
      ]);
      // Nor a loader through the environment.
      const environ = (await readFile(`/proc/${node}/environ`, 'utf8')).split('\0');
      expect(environ.filter((v) => v.startsWith('NODE_OPTIONS=') && v.length > 'NODE_OPTIONS='.length)).toEqual([]);
      run.signal('SIGTERM');
      expect(await run.exited, run.output.slice(-20).join('\n')).toBe(0);
    } finally {
      killGroup(run);
    }
  });
});
