/**
 * One real-path run, shared by the scenarios that measure `npm start` (realpath.bench.ts, tokens.bench.ts): the
 * HTTP fakes in their own process (fakes.child.ts), a fresh PostgreSQL database, a data directory, a NATS
 * connection, private subjects and streams, and `npm start` with the fakes configured as a user would; all of it
 * stopped and removed afterwards, whatever happens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { withFreshDatabase } from './database';
import { FAKE_KEYS } from './fake.keys';
import { startChild, startNpm, type NpmStart } from './realpath.procs';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** The environment of `npm start` against the fakes at `urls`, as a user would set it. */
export function runtimeEnv(
  urls: Record<string, string>,
  databaseUrl: string,
  dataDir: string,
  prefix: string,
  streams: { commands: string; events: string },
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    NATS_URL,
    PORT: '0',
    INKWELL_DATA_DIR: dataDir,
    INKWELL_SUBJECT_PREFIX: prefix,
    INKWELL_COMMANDS_STREAM: streams.commands,
    INKWELL_EVENTS_STREAM: streams.events,
    OPENAI_API_KEY: FAKE_KEYS.openai,
    OPENAI_BASE_URL: urls.openai!,
    REPLICATE_API_TOKEN: FAKE_KEYS.replicate,
    REPLICATE_BASE_URL: urls.replicate!,
    REPLICATE_MODEL: 'acme/painter',
    WIX_APP_ID: FAKE_KEYS.wixAppId,
    WIX_APP_SECRET: FAKE_KEYS.wixSecret,
    WIX_BASE_URL: urls.wix!,
    WIX_DEFAULT_MEMBER_ID: 'member-1',
  };
}

/**
 * Provider limits far above any load these scenarios send (`extraEnv` for `withRealPath`): they measure the path, or
 * the token budget, not the concurrency and per-minute limits.
 */
export const LIMITS_ABOVE_LOAD = {
  INKWELL_OPENAI_CONCURRENCY: '1000',
  INKWELL_OPENAI_RPM: '1000000',
  INKWELL_REPLICATE_CONCURRENCY: '1000',
  INKWELL_REPLICATE_RPM: '1000000',
  INKWELL_WIX_CONCURRENCY: '100',
  INKWELL_WIX_RPM: '1000000',
};

/** Publishes a command over JetStream with its dedup id, as a client would; resolves at the PubAck. */
export async function publishCommand(js: JetStreamClient, subject: string, body: object, msgId: string) {
  const h = headers();
  h.set('Nats-Msg-Id', msgId);
  await js.publish(subject, JSON.stringify(body), { headers: h });
}

/** What a run gives its body: the fakes' URLs (and `control`), the runtime, NATS and the private prefix. */
export interface RealPathRun {
  urls: Record<string, string>;
  runtime: NpmStart;
  nc: NatsConnection;
  prefix: string;
  tag: string;
  /** The runtime's database (the benchmark reads the outbox's transaction times from it). */
  databaseUrl: string;
}

/**
 * Starts the fakes (`fakesArgs` for fakes.child.ts), then `npm start` with `runtimeEnv` plus `extraEnv`, runs `fn`,
 * and tears everything down. `name` names the prefix, streams and data directory.
 */
export async function withRealPath<T>(
  name: string,
  fakesArgs: string[],
  extraEnv: Record<string, string>,
  fn: (run: RealPathRun) => Promise<T>,
): Promise<T> {
  const tag = Math.random().toString(36).slice(2, 8);
  const prefix = `${name}_${tag}`;
  const streams = { commands: `${name.toUpperCase()}_${tag}_CMD`, events: `${name.toUpperCase()}_${tag}_EVT` };
  const fakes = startChild(['bench/lib/fakes.child.ts', ...fakesArgs], {});
  const dataDir = await mkdtemp(path.join(tmpdir(), `inkwell-${name}-`));
  let nc: NatsConnection | undefined;
  try {
    const urls = await fakes.result<Record<string, string>>('fakes');
    nc = await connect({ servers: NATS_URL });
    const conn = nc;
    return await withFreshDatabase(async (db) => {
      const runtime = await startNpm({ ...runtimeEnv(urls, db.url, dataDir, prefix, streams), ...extraEnv });
      try {
        return await fn({ urls, runtime, nc: conn, prefix, tag, databaseUrl: db.url });
      } finally {
        await runtime.stop();
      }
    });
  } finally {
    if (nc) {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(streams.commands).catch(() => undefined);
      await jsm.streams.delete(streams.events).catch(() => undefined);
      await nc.close();
    }
    await fakes.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
