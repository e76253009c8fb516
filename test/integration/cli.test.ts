/**
 * The `inkwell` CLI and the README's NATS snippet (need PostgreSQL and NATS), run as child processes against a real
 * runtime (`src/main.ts`): commands over NATS (PubAck, rejection) and HTTP, status, tail from the events stream,
 * input checked before anything is sent. One runtime for the file, with its own database, prefix and streams.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startRuntime, until, type RuntimeProcess } from '../support/process';
import { requireNats, requirePostgres, type NatsHandle, type PostgresHandle } from '../support/servers';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = 'src/cli/inkwell.ts';
const INHERITED = ['NATS_URL', 'INKWELL_URL', 'INKWELL_SUBJECT_PREFIX', 'INKWELL_API_TOKEN', 'INKWELL_EVENTS_STREAM'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns `node --import tsx <script> ...args` with `env` added to a copy of ours without the CLI's variables. */
function spawnScript(script: string, args: string[], env: Record<string, string>) {
  const base = { ...process.env };
  for (const name of INHERITED) delete base[name];
  return spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs a script to its exit (killed after `timeoutMs`). */
function runScript(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000) {
  const proc = spawnScript(script, args, env);
  const result: Run = { code: null, stdout: '', stderr: '' };
  proc.stdout.on('data', (d: Buffer) => (result.stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (result.stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise<Run>((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ...result, code });
    }),
  );
}

const probeDb = await requirePostgres();
await probeDb?.drop();
const natsProbe = await requireNats();

describe.skipIf(!probeDb || !natsProbe)('inkwell CLI (needs PostgreSQL and NATS)', { timeout: 120_000 }, () => {
  let db: PostgresHandle;
  let nats: NatsHandle;
  let streams: { commands: string; events: string };
  let dataDir: string;
  let rt: RuntimeProcess;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  const natsEnv = () => ({
    NATS_URL: nats.url,
    INKWELL_SUBJECT_PREFIX: nats.prefix,
    INKWELL_EVENTS_STREAM: streams.events,
  });
  const cli = (args: string[], env: Record<string, string> = {}) => runScript(CLI, args, env);
  const statusOf = async (blogId: string, instanceId: string) => {
    const run = await cli(['status', blogId, '--instance', instanceId, '--http', rt.base]);
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as { status: string; seq: number; ideas?: { title: string }[]; idea?: unknown };
  };
  /** Polls the API until the blog has `wanted`, then checks that `inkwell status` shows the same. */
  const untilStatus = async (blogId: string, instanceId: string, wanted: string) => {
    await until(`${blogId} ${wanted}`, async () => {
      const res = await http(rt.base, 'GET', `/api/blogs/${blogId}?instanceId=${instanceId}`);
      return res.body?.status === wanted ? true : undefined;
    });
    const blog = await statusOf(blogId, instanceId);
    expect(blog).toMatchObject({ blogId, instanceId, status: wanted });
    return blog;
  };

  beforeAll(async () => {
    db = (await requirePostgres())!;
    nats = (await requireNats())!;
    streams = { commands: `T_${nats.prefix}_CMD`, events: `T_${nats.prefix}_EVT` };
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-cli-'));
    nc = await connect({ servers: nats.url, name: `test-${nats.prefix}` });
    jsm = await jetstreamManager(nc);
    rt = await startRuntime(
      {
        DATABASE_URL: db.url,
        NATS_URL: nats.url,
        INKWELL_SUBJECT_PREFIX: nats.prefix,
        INKWELL_COMMANDS_STREAM: streams.commands,
        INKWELL_EVENTS_STREAM: streams.events,
        INKWELL_DATA_DIR: dataDir,
        PORT: '0',
      },
      'src/main.ts',
    );
  });

  afterAll(async () => {
    if (rt && rt.proc.exitCode === null) {
      rt.proc.kill('SIGTERM');
      const timer = setTimeout(() => rt.proc.kill('SIGKILL'), 15_000);
      await rt.exited;
      clearTimeout(timer);
    }
    for (const name of Object.values(streams ?? {})) await jsm?.streams.delete(name).catch(() => undefined);
    await nc?.drain().catch(() => undefined);
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('creates over NATS, prints the PubAck, and the idea blog reaches DONE', async () => {
    const args = ['create', '--instance', 'store-a', '--idea-title', 'Cold brew basics', '--keyword', 'coffee'];
    const run = await cli([...args, '--msg-id', `${nats.prefix}-create-1`], natsEnv());
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { blogId: string; pubAck: Record<string, unknown>; rejected?: unknown };
    expect(result.pubAck).toEqual({ stream: streams.commands, seq: expect.any(Number), duplicate: false });
    expect(result.rejected).toBeUndefined();

    const again = await cli([...args, '--msg-id', `${nats.prefix}-create-1`, '--wait-ms', '0'], natsEnv());
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ blogId: result.blogId, pubAck: { duplicate: true } });

    const done = await untilStatus(result.blogId, 'store-a', 'DONE');
    expect(done.idea).toMatchObject({ title: 'Cold brew basics' });
  });

  it('creates, selects and shows a blog over HTTP', async () => {
    const overHttp = ['--http', rt.base];
    const created = await cli([
      'create',
      '--instance',
      'store-h',
      '--topic',
      'Tea',
      '--blog',
      'cli-http-1',
      ...overHttp,
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ blogId: 'cli-http-1', instanceId: 'store-h' });

    const awaiting = await untilStatus('cli-http-1', 'store-h', 'AWAITING_SELECTION');
    expect(awaiting.ideas?.length).toBeGreaterThan(0);
    const selected = await cli(['select', 'cli-http-1', '--instance', 'store-h', '--index', '0', ...overHttp]);
    expect(selected.code, selected.stderr).toBe(0);
    expect(JSON.parse(selected.stdout)).toMatchObject({ blogId: 'cli-http-1', idea: awaiting.ideas![0] });

    const repeated = await cli(['select', 'cli-http-1', '--instance', 'store-h', '--index', '0', ...overHttp]);
    expect(repeated.code).toBe(1);
    expect(repeated.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^inkwell: .*409 INVALID_STATE/)]);

    const listed = await cli(['list', '--instance', 'store-h', ...overHttp]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).items.map((b: { blogId: string }) => b.blogId)).toEqual(['cli-http-1']);
  });

  it('cancels every matching blog with cancel --all (counts first with --dry-run), and no other', async () => {
    const overHttp = ['--http', rt.base];
    for (const [blogId, store] of [
      ['cli-bulk-1', 'store-bulk'],
      ['cli-bulk-2', 'store-bulk'],
      ['cli-bulk-3', 'store-bulk-other'],
    ] as const) {
      const run = await cli(['create', '--instance', store, '--topic', 'Bulk', '--blog', blogId, ...overHttp]);
      expect(run.code, run.stderr).toBe(0);
      await untilStatus(blogId, store, 'AWAITING_SELECTION');
    }
    const counted = await cli(['cancel', '--all', '--instance', 'store-bulk', '--dry-run', ...overHttp]);
    expect(counted.code, counted.stderr).toBe(0);
    expect(JSON.parse(counted.stdout)).toEqual({ matched: 2, applied: 0 });
    await untilStatus('cli-bulk-1', 'store-bulk', 'AWAITING_SELECTION');

    const run = await cli([
      'cancel',
      '--all',
      '--instance',
      'store-bulk',
      '--stage',
      'AWAITING_SELECTION',
      ...overHttp,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ matched: 2, applied: 2 });
    await untilStatus('cli-bulk-1', 'store-bulk', 'CANCELLED');
    await untilStatus('cli-bulk-2', 'store-bulk', 'CANCELLED');
    await untilStatus('cli-bulk-3', 'store-bulk-other', 'AWAITING_SELECTION');

    const noFilter = await cli(['retry', '--all', ...overHttp]);
    expect(noFilter.code).toBe(2);
    expect(noFilter.stderr).toMatch(/^inkwell: invalid --all: give at least one filter/);
  });

  it('exits 1 and prints the NOT_FOUND rejection of a select on an unknown blog over NATS', async () => {
    const run = await cli(['select', 'no-such-blog', '--instance', 'store-a', '--index', '0'], natsEnv());
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({
      blogId: 'no-such-blog',
      pubAck: { stream: streams.commands },
      rejected: { code: 'NOT_FOUND', subject: `${nats.prefix}.select`, blogId: 'no-such-blog' },
    });
    expect(run.stderr).toMatch(/^inkwell: select rejected: NOT_FOUND: .+\n$/);
  });

  /** Starts `tail` for one blog; `ready` resolves once it follows; `done` once a line matches `last` (then SIGINT). */
  function follow(blogId: string, extra: string[], last: RegExp) {
    const proc = spawnScript(CLI, ['tail', '--instance', 'store-t', '--blog', blogId, ...extra], natsEnv());
    const ready = new Promise<void>((resolve) =>
      proc.stderr.on('data', (d: Buffer) => /following/.test(d.toString()) && resolve()),
    );
    const exited = new Promise<number | null>((resolve) => proc.once('close', resolve));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 40_000);
    const done = (async () => {
      const lines: string[] = [];
      for await (const line of createInterface({ input: proc.stdout })) {
        lines.push(line);
        if (last.test(line)) proc.kill('SIGINT');
      }
      const code = await exited;
      clearTimeout(timer);
      return { lines, code };
    })();
    return { ready, done };
  }

  it('tail --json follows a blog’s events live, in seq order, and stops on SIGINT', async () => {
    const tail = follow('cli-tail-1', ['--json'], /"status":"DONE"/);
    await tail.ready;
    const created = await cli(['create', '--instance', 'store-t', '--idea-title', 'Tails', '--blog', 'cli-tail-1'], {
      ...natsEnv(),
    });
    expect(created.code, created.stderr).toBe(0);

    const { lines, code } = await tail.done;
    expect(code).toBe(0);
    const events = lines.map((l) => JSON.parse(l) as { seq: number; status: string; blogId: string });
    const seqs = events.map((e) => e.seq);
    // In seq order; delivery is at least once, so a repeat is allowed but nothing is skipped.
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect([...new Set(seqs)]).toEqual(seqs.map((_, i) => i + 1).slice(0, new Set(seqs).size));
    expect(events[0]).toMatchObject({ blogId: 'cli-tail-1', status: 'PENDING', previousStatus: null });
    expect(events.at(-1)?.status).toBe('DONE');
  });

  it('tail --from-start replays the events stream, one line per event', async () => {
    await untilStatus('cli-tail-1', 'store-t', 'DONE');
    const { lines, code } = await follow('cli-tail-1', ['--from-start'], / → DONE /).done;
    expect(code).toBe(0);
    expect(lines[0]).toMatch(/^\S+Z {2}store-t {2}cli-tail-1 {2}- → PENDING {2}seq=1$/);
    expect(lines.at(-1)).toMatch(/^\S+Z {2}store-t {2}cli-tail-1 {2}PUBLISHING → DONE {2}seq=\d+ .*url=file:/);
  });

  it('refuses a bad id with one line and exit 2, sending nothing', async () => {
    const before = (await jsm.streams.info(streams.commands)).state.messages;
    const run = await cli(['cancel', 'bad id!', '--instance', 'store-a', '--nats', nats.url], {
      INKWELL_SUBJECT_PREFIX: nats.prefix,
    });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^inkwell: blogId "bad id!": must be 1-64 characters of A-Z a-z 0-9 _ -\n$/);
    expect((await jsm.streams.info(streams.commands)).state.messages).toBe(before);
  });

  it('runs the README snippet (examples/nats-client.ts) to DONE', async () => {
    const run = await runScript('examples/nats-client.ts', [], natsEnv(), 60_000);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/create stored: stream=\S+ seq=\d+ duplicate=false/);
    expect(run.stdout).toMatch(/AWAITING_SELECTION[\s\S]*selecting[\s\S]*DONE/);
  });
});
