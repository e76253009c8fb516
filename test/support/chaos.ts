/**
 * The chaos run: two runtime processes share PostgreSQL and NATS while blogs are created and selected over
 * NATS; every few seconds one process is killed with SIGKILL and started again under a new node id. At the end
 * every blog must be DONE, published exactly once (one publish attempt at the publisher), and its events, as read
 * back from the events stream, must run 1..n with one status per seq and only legal changes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { blogSeqs, eventProblems, fleetProblems, statuses, streamEvents } from './fleet.check';
import { killHard, startRuntime, type RuntimeProcess } from './process';

/** What to run. */
export interface ChaosOptions {
  databaseUrl: string;
  natsUrl: string;
  prefix: string;
  blogs: number;
  stores: number;
  durationMs: number;
  killEveryMs: number;
  /** Kills to make even if the run's duration is over first (restarts are slow on a busy machine). */
  minKills?: number;
  leaseTtlMs: number;
  latencyScale: number;
  settleTimeoutMs: number;
  say?: (line: string) => void;
}

/** What happened. */
export interface ChaosReport {
  kills: number;
  problems: string[];
  settleMs: number;
  eventsInStream: number;
  expectedEvents: number;
}

const enc = new TextEncoder();

async function publish(nc: NatsConnection, subject: string, body: unknown, msgId: string) {
  const h = headers();
  h.set('Nats-Msg-Id', msgId);
  await jetstream(nc).publish(subject, enc.encode(JSON.stringify(body)), { headers: h });
}

/** Runs the chaos scenario and reports; cleans up its streams and temp files. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const say = o.say ?? (() => undefined);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-chaos-'));
  const streams = { cmd: `T_${o.prefix}_CMD`, evt: `T_${o.prefix}_EVT` };
  let generation = 0;
  const env = (slot: string) => ({
    DATABASE_URL: o.databaseUrl,
    NATS_URL: o.natsUrl,
    INKWELL_SUBJECT_PREFIX: o.prefix,
    INKWELL_COMMANDS_STREAM: streams.cmd,
    INKWELL_EVENTS_STREAM: streams.evt,
    INKWELL_DATA_DIR: dataDir,
    INKWELL_NODE_ID: `${slot}-${++generation}`,
    INKWELL_LEASE_TTL_MS: String(o.leaseTtlMs),
    INKWELL_LOG_LEVEL: 'warn',
    HARNESS_LATENCY_SCALE: String(o.latencyScale),
    PORT: '0',
  });
  const procs: RuntimeProcess[] = [await startRuntime(env('a')), await startRuntime(env('b'))];
  const nc = await connect({ servers: o.natsUrl });
  const client = new pg.Client({ connectionString: o.databaseUrl });
  await client.connect();
  const selected = new Set<string>();
  const select = async (blogId: string, instanceId: string) => {
    if (selected.has(blogId)) return;
    selected.add(blogId);
    await publish(nc, `${o.prefix}.select`, { blogId, instanceId, ideaIndex: 0 }, `sel-${blogId}`);
  };
  nc.subscribe(`${o.prefix}.events.>`, {
    callback: (_err, msg) => {
      const e = msg.json<{ blogId: string; instanceId: string; status: string }>();
      if (e.status === 'AWAITING_SELECTION') void select(e.blogId, e.instanceId).catch(() => selected.delete(e.blogId));
    },
  });
  let kills = 0;
  try {
    // Blogs arrive steadily over the first 70 % of the run, so kills keep finding blogs in every stage.
    const arrivals = (async () => {
      const gapMs = (o.durationMs * 0.7) / o.blogs;
      for (let i = 0; i < o.blogs; i++) {
        const instanceId = `store-${i % o.stores}`;
        const blogId = `chaos-${i}`;
        const body =
          i % 2 ? { blogId, instanceId, topic: `topic ${i}` } : { blogId, instanceId, idea: { title: `Idea ${i}` } };
        await publish(nc, `${o.prefix}.create`, body, `create-${blogId}`);
        await new Promise((r) => setTimeout(r, gapMs));
      }
      say(`created ${o.blogs} blogs over NATS`);
    })();
    const chaosEnd = Date.now() + o.durationMs;
    while (Date.now() < chaosEnd || kills < (o.minKills ?? 0)) {
      await new Promise((r) => setTimeout(r, o.killEveryMs));
      const slot = Math.random() < 0.5 ? 0 : 1;
      await killHard(procs[slot]!);
      kills++;
      procs[slot] = await startRuntime(env(slot === 0 ? 'a' : 'b'));
      const done = [...(await statuses(client)).values()].filter((s) => s === 'DONE').length;
      say(`kill ${kills}: restarted slot ${slot}; ${done}/${o.blogs} DONE`);
    }
    await arrivals;
    const settleStart = Date.now();
    while (Date.now() - settleStart < o.settleTimeoutMs) {
      const all = await statuses(client);
      // A selection whose event was seen before a crash but whose command was never sent: send it now.
      for (const [blogId, s] of all) {
        if (s === 'AWAITING_SELECTION' && !selected.has(blogId))
          await select(blogId, `store-${Number(blogId.slice(6)) % o.stores}`);
      }
      const unpublished = (
        await client.query(
          'select count(*)::int as n from outbox o where (o.tx, o.id) > (select tx, last_id from outbox_cursor)',
        )
      ).rows[0] as { n: number };
      if (all.size === o.blogs && [...all.values()].every((s) => s === 'DONE') && unpublished.n === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const settleMs = Date.now() - settleStart;
    const problems = await fleetProblems(client, dataDir, o.blogs);
    const seqs = await blogSeqs(client);
    // Events are published at least once (a kill between publish and mark repeats one): checked per blog and seq.
    const events = await streamEvents(nc, streams.evt);
    problems.push(...eventProblems(events, seqs));
    const expected = [...seqs.values()].reduce((a, b) => a + b, 0);
    return { kills, problems, settleMs, eventsInStream: events.length, expectedEvents: expected };
  } finally {
    for (const p of procs) p.proc.kill('SIGKILL');
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(streams.cmd).catch(() => undefined);
    await jsm.streams.delete(streams.evt).catch(() => undefined);
    await nc.close();
    await client.end();
    await rm(dataDir, { recursive: true, force: true });
  }
}
