/**
 * How tests find their servers. For each kind, in order:
 *  1. the URL in the environment (DATABASE_URL, NATS_URL, REDIS_URL), if set: used as is, never replaced;
 *  2. else the local default on 127.0.0.1 (a short connect probe);
 *  3. else a throwaway container, when a Docker engine answers;
 *  4. else, under CI=true, an Error naming the missing server; otherwise one console.warn line and `undefined`,
 *     so the test file can skip.
 * The server is resolved once per test process; every `require*` call gets fresh isolation on it
 * (a new database, or a new subject/key prefix), so parallel files and leftovers never interfere.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { describe, beforeAll, afterAll } from 'vitest';
import { isDockerAvailable, startContainer, type ServerKind } from './containers';

/** A fresh database of its own on the test PostgreSQL server. */
export interface PostgresHandle {
  /** Connection string of the fresh database. */
  url: string;
  /** Its name, `inkwell_test_<random>`. */
  database: string;
  /** Terminates its connections and drops it; safe to call twice. */
  drop(): Promise<void>;
}

/** The test NATS server (JetStream on) and a subject prefix no other test uses. */
export interface NatsHandle {
  url: string;
  /** `t_<random>`: use it as INKWELL_SUBJECT_PREFIX and in stream names. */
  prefix: string;
}

/** The test Redis server and a key prefix no other test uses. */
export interface RedisHandle {
  url: string;
  /** `t_<random>`: prefix every key with it. */
  prefix: string;
}

const SERVERS = {
  postgres: { label: 'PostgreSQL', env: 'DATABASE_URL', local: 'postgres://postgres@127.0.0.1:5432/postgres' },
  nats: { label: 'NATS', env: 'NATS_URL', local: 'nats://127.0.0.1:4222' },
  redis: { label: 'Redis', env: 'REDIS_URL', local: 'redis://127.0.0.1:6379' },
} as const satisfies Record<ServerKind, { label: string; env: string; local: string }>;

const PROBE_TIMEOUT_MS = 1500;
const resolved = new Map<ServerKind, Promise<string | undefined>>();
const warned = new Set<ServerKind>();

/** Returns a fresh database on the test server, or undefined (after a warning) when none can be had outside CI. */
export async function requirePostgres(): Promise<PostgresHandle | undefined> {
  const adminUrl = await requireServer('postgres');
  if (adminUrl === undefined) return undefined;
  const database = `inkwell_test_${randomId()}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE "${database}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return {
    url: url.toString(),
    database,
    drop: () =>
      withClient(adminUrl, async (client) => {
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [database]);
        await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      }),
  };
}

/** Returns the test NATS server with a fresh prefix, or undefined (after a warning) outside CI. */
export async function requireNats(): Promise<NatsHandle | undefined> {
  const url = await requireServer('nats');
  return url === undefined ? undefined : { url, prefix: `t_${randomId()}` };
}

/** Returns the test Redis server with a fresh key prefix, or undefined (after a warning) outside CI. */
export async function requireRedis(): Promise<RedisHandle | undefined> {
  const url = await requireServer('redis');
  return url === undefined ? undefined : { url, prefix: `t_${randomId()}` };
}

/**
 * A describe block that runs only when PostgreSQL is available (and fails, not skips, under CI=true).
 * Must be awaited at the top level of the test file. A fresh database is created before the block and
 * dropped after it; `pg()` returns its handle inside hooks and tests.
 */
export async function describeWithPostgres(name: string, fn: (pg: () => PostgresHandle) => void): Promise<void> {
  await describeWith('postgres', requirePostgres, name, fn, (handle) => handle.drop());
}

/** Like describeWithPostgres, for NATS: `nats()` gives the URL and a fresh subject prefix. */
export async function describeWithNats(name: string, fn: (nats: () => NatsHandle) => void): Promise<void> {
  await describeWith('nats', requireNats, name, fn);
}

/** Like describeWithPostgres, for Redis: `redis()` gives the URL and a fresh key prefix. */
export async function describeWithRedis(name: string, fn: (redis: () => RedisHandle) => void): Promise<void> {
  await describeWith('redis', requireRedis, name, fn);
}

async function describeWith<H>(
  kind: ServerKind,
  acquire: () => Promise<H | undefined>,
  name: string,
  fn: (handle: () => H) => void,
  release?: (handle: H) => Promise<void>,
): Promise<void> {
  const available = (await requireServer(kind)) !== undefined;
  describe.skipIf(!available)(name, () => {
    let handle: H | undefined;
    beforeAll(async () => {
      handle = await acquire();
    });
    afterAll(async () => {
      if (handle !== undefined) await release?.(handle);
    });
    fn(() => {
      if (handle === undefined) throw new Error(`${SERVERS[kind].label} handle used outside a hook or test`);
      return handle;
    });
  });
}

/** Resolves the server URL once per process; throws under CI=true, warns and yields undefined otherwise. */
async function requireServer(kind: ServerKind): Promise<string | undefined> {
  let found = resolved.get(kind);
  if (found === undefined) {
    found = findServer(kind).then(
      (url) => url,
      (error: unknown) => missing(kind, describeError(error)),
    );
    resolved.set(kind, found);
  }
  return found;
}

async function findServer(kind: ServerKind): Promise<string> {
  const { env, local } = SERVERS[kind];
  const fromEnv = process.env[env];
  if (fromEnv) {
    const problem = await probe(kind, fromEnv);
    if (problem === undefined) return fromEnv;
    throw new Error(`${env}=${redact(fromEnv)} is not reachable (${problem})`);
  }
  const localProblem = await probe(kind, local);
  if (localProblem === undefined) return local;
  if (await isDockerAvailable()) return startContainer(kind);
  throw new Error(`${env} is unset, ${redact(local)} is not reachable (${localProblem}) and no Docker engine answers`);
}

function missing(kind: ServerKind, reason: string): undefined {
  const { label } = SERVERS[kind];
  if (process.env.CI === 'true') throw new Error(`${label} is required under CI=true but unavailable: ${reason}`);
  if (!warned.has(kind)) console.warn(`[test servers] skipping tests that need ${label}: ${reason}`);
  warned.add(kind);
  return undefined;
}

/** Returns undefined when the server answers, else the reason it does not. */
async function probe(kind: ServerKind, url: string): Promise<string | undefined> {
  try {
    if (kind === 'postgres') await withClient(url, (client) => client.query('SELECT 1'));
    else await probeTcp(url, kind === 'nats' ? 4222 : 6379);
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}

/** Resolves when a TCP connection to any of the comma-separated URLs opens. */
async function probeTcp(urls: string, defaultPort: number): Promise<void> {
  const targets = urls.split(',').map((raw) => new URL(raw.includes('://') ? raw.trim() : `tcp://${raw.trim()}`));
  await Promise.any(targets.map((u) => connectOnce(u.hostname.replace(/^\[|\]$/g, ''), Number(u.port) || defaultPort)));
}

function connectOnce(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, timeout: PROBE_TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`timed out connecting to ${host}:${port}`));
    });
    socket.once('error', (error) => reject(error));
  });
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on('error', () => undefined); // a server-side disconnect after use must not crash the test process
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** One line for an error; AggregateError (several addresses tried) shows its first cause. */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0]);
  return error instanceof Error ? error.message || error.name : String(error);
}

function randomId(): string {
  return randomBytes(6).toString('hex');
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/g, '//$1:***@');
}
