/**
 * PostgreSQL and nats-server restarted during a run (needs the local PostgreSQL and NATS, which it restarts):
 * every blog still finishes, published once (one attempt), its events 1..n with legal changes. Lives in test/faults, which runs after the
 * main suite and one file at a time, because it takes the shared servers down for a moment.
 */
import { execSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { blogSeqs, eventProblems, fleetProblems, statuses, streamEvents } from '../support/fleet.check';
import { startRuntime, until, type RuntimeProcess } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();
const BLOGS = 40;
const local = (url: string | undefined) => !url || /127\.0\.0\.1|localhost/.test(url);
// Only the machine's own servers can be restarted from here.
const canRestart = local(process.env.DATABASE_URL) && local(process.env.NATS_URL) && process.getuid?.() === 0;
if (!canRestart && process.env.CI !== 'true')
  console.warn('[faults] skipping server restarts: servers are not local or not root');

function restartPostgres() {
  execSync('pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart', { stdio: 'inherit' });
}

function restartNats() {
  execSync('start-stop-daemon --stop --oknodo --retry 5 --exec /usr/sbin/nats-server', { stdio: 'inherit' });
  execSync(
    'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log',
    { stdio: 'inherit' },
  );
}

await describeWithPostgres('server restarts mid-run (needs local PostgreSQL and NATS, as root)', (db) => {
  let dataDir: string;
  let rt: RuntimeProcess | undefined;
  let nc: NatsConnection;
  const streams = { cmd: `T_${nats?.prefix}_CMD`, evt: `T_${nats?.prefix}_EVT` };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-restarts-'));
  });
  afterAll(async () => {
    rt?.proc.kill('SIGKILL');
    if (nc) {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(streams.cmd).catch(() => undefined);
      await jsm.streams.delete(streams.evt).catch(() => undefined);
      await nc.close();
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it.skipIf(!nats || (!canRestart && process.env.CI !== 'true'))(
    'survives PostgreSQL and nats-server restarting: every blog finishes once',
    async () => {
      expect(canRestart, 'CI must run the restart test against local servers as root').toBe(true);
      rt = await startRuntime({
        DATABASE_URL: db().url,
        NATS_URL: nats!.url,
        INKWELL_SUBJECT_PREFIX: nats!.prefix,
        INKWELL_COMMANDS_STREAM: streams.cmd,
        INKWELL_EVENTS_STREAM: streams.evt,
        INKWELL_DATA_DIR: dataDir,
        INKWELL_LOG_LEVEL: 'warn',
        HARNESS_LATENCY_SCALE: '10',
        PORT: '0',
      });
      nc = await connect({ servers: nats!.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
      const js = jetstream(nc);
      for (let i = 0; i < BLOGS; i++) {
        const h = headers();
        h.set('Nats-Msg-Id', `create-r${i}`);
        const body = { blogId: `r-${i}`, instanceId: `store-${i % 4}`, idea: { title: `Restart-proof post ${i}` } };
        await js.publish(`${nats!.prefix}.create`, JSON.stringify(body), { headers: h });
      }
      await new Promise((r) => setTimeout(r, 1500));
      restartPostgres();
      await new Promise((r) => setTimeout(r, 2000));
      restartNats();

      const client = new pg.Client({ connectionString: db().url });
      await until('PostgreSQL back', () => client.connect().then(() => true), 30_000, 500);
      try {
        await until(
          'every blog DONE and every event published',
          async () => {
            const all = await statuses(client);
            const { rows } = await client.query<{ n: number }>(
              'select count(*)::int as n from outbox o where (o.tx, o.id) > (select tx, last_id from outbox_cursor)',
            );
            return all.size === BLOGS && [...all.values()].every((s) => s === 'DONE') && rows[0]!.n === 0
              ? true
              : undefined;
          },
          120_000,
          500,
        ).catch(async (err: unknown) => {
          // Say why: which statuses are left, and what the runtime said (and whether it is still alive).
          const left: Record<string, number> = {};
          for (const s of (await statuses(client)).values()) left[s] = (left[s] ?? 0) + 1;
          throw new Error(
            `${String(err)}; statuses ${JSON.stringify(left)}; runtime exit code ${rt!.proc.exitCode}; ` +
              `its last output:\n${rt!.output.slice(-30).join('\n')}`,
          );
        });
        expect(await fleetProblems(client, dataDir, BLOGS)).toEqual([]);
        // Our own client reconnects to the restarted nats-server too: ask until JetStream answers it.
        await until(
          'JetStream answering the test client',
          async () => (await jetstreamManager(nc, { timeout: 2_000 })).streams.info(streams.evt),
          30_000,
          500,
        );
        // Per blog: seq 1..n as published, one status per seq, every change legal.
        expect(eventProblems(await streamEvents(nc, streams.evt), await blogSeqs(client))).toEqual([]);
      } finally {
        await client.end();
      }
    },
    200_000,
  );
});
