/**
 * Private PostgreSQL, nats-server and Redis instances for the outage tests, each on a free port with its own data
 * directory, started and removed by the test: an outage test stops its own server, never the shared ones other
 * test files (and other people) are using. PostgreSQL is a fresh cluster made with `initdb` as the `postgres` user
 * (so the test must run as root); `stop('immediate')` is PostgreSQL's crash-like shutdown (crash recovery at the
 * next start). `privateServersProblem()` says why they cannot be had here, for a skip (or a failure under CI).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const NATS_BIN = '/usr/sbin/nats-server';
const REDIS_BIN = '/usr/bin/redis-server';

/** A server this test owns: stop it, start it again on the same port and data, remove it at the end. */
export interface PrivateServer {
  url: string;
  port: number;
  /** PostgreSQL: `immediate` (crash-like) or `fast`; the others are killed with SIGKILL either way. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  start(): Promise<void>;
  /** Stops it (if running) and deletes its data directory. */
  remove(): Promise<void>;
}

/** Why private servers cannot be started on this machine, or undefined when they can. */
export function privateServersProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'private PostgreSQL clusters need root (initdb runs as the postgres user)';
  const missing = [`${PG_BIN}/initdb`, `${PG_BIN}/pg_ctl`, NATS_BIN, REDIS_BIN].filter((f) => !existsSync(f));
  return missing.length > 0 ? `missing ${missing.join(', ')}` : undefined;
}

/**
 * Why the outage test `name` cannot run here (no private servers, or a shared server it needs is missing, as
 * `missing` says), after a warning; undefined when it can. Under CI=true it throws instead: CI must run it.
 */
export function outageTestProblem(name: string, missing?: string): string | undefined {
  const problem = privateServersProblem() ?? missing;
  if (problem && process.env.CI === 'true') throw new Error(`the ${name} outage test cannot run under CI: ${problem}`);
  if (problem) console.warn(`[faults] skipping the ${name} outage test: ${problem}`);
  return problem;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`. */
async function listening(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function run(cmd: string, args: string[]): void {
  const result = spawnSync(cmd, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
}

/** A fresh PostgreSQL 15 cluster (trust auth, user postgres) on a free port. */
export async function startPrivatePostgres(): Promise<PrivateServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'inkwell-pg-'));
  const pgUid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(dir, pgUid, pgUid);
  const asPostgres = (bin: string, args: string[]) =>
    run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/${bin}`, ...args]);
  asPostgres('initdb', ['-D', dir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = async () => {
    asPostgres('pg_ctl', ['-D', dir, '-o', options, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    await listening(port);
  };
  let running = false;
  await start();
  running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop(mode = 'immediate') {
      asPostgres('pg_ctl', ['-D', dir, '-m', mode, '-w', 'stop']);
      running = false;
    },
    async start() {
      await start();
      running = true;
    },
    async remove() {
      if (running) asPostgres('pg_ctl', ['-D', dir, '-m', 'immediate', '-w', 'stop']);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A server run as a child process of the test, restarted with the same arguments. */
async function childServer(bin: string, argsFor: (port: number, dir: string) => string[], scheme: string) {
  const dir = mkdtempSync(path.join(tmpdir(), `inkwell-${path.basename(bin)}-`));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn(bin, argsFor(port, dir), { stdio: 'ignore' });
    child = proc;
    await Promise.race([
      listening(port),
      new Promise((_, reject) => proc.once('exit', (code) => reject(new Error(`${bin} exited (${code})`)))),
    ]);
  };
  const kill = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  };
  await start();
  const server: PrivateServer = {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    stop: kill,
    start,
    async remove() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A nats-server with JetStream, its store in its own directory (so streams survive a kill and restart). */
export function startPrivateNats(): Promise<PrivateServer> {
  return childServer(NATS_BIN, (port, dir) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], 'nats');
}

/** A Redis without persistence: a restart comes back empty, as the limiter must survive. */
export function startPrivateRedis(): Promise<PrivateServer> {
  return childServer(
    REDIS_BIN,
    (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    'redis',
  );
}
