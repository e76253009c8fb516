/**
 * nats-server killed (SIGKILL) mid-work and restarted on the same port and store, a private one (the shared server
 * is never touched): blogs in every stage keep going, events wait in the outbox, commands sent before and after
 * are all applied. Nothing fails, nothing is repeated, one post per blog, every event in order, and `/healthz`
 * names NATS while it is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOutageWorld, type OutageWorld } from '../support/outage.scenario';
import { outageTestProblem, startPrivateNats, type PrivateServer } from '../support/private.servers';
import { requirePostgres, type PostgresHandle } from '../support/servers';

const db = await requirePostgres();
const problem = outageTestProblem('NATS', db ? undefined : 'no PostgreSQL server');
if (problem) await db?.drop(); // not used: leave no database behind

describe.skipIf(problem !== undefined)('nats-server killed and restarted (private server)', () => {
  let nats: PrivateServer;
  let world: OutageWorld;
  const database = db as PostgresHandle;

  beforeAll(async () => {
    nats = await startPrivateNats();
    world = await startOutageWorld({ databaseUrl: database.url, natsUrl: nats.url });
  });
  afterAll(async () => {
    await world?.close();
    await nats?.remove();
    await database?.drop();
  });

  it('rides out a kill and restart of nats-server: every blog DONE, nothing repeated or extra', async () => {
    const spread = await world.spreadOverEveryStage('nats');
    console.log(`[outage] killing nats-server with blogs ${JSON.stringify(spread)}`);
    await nats.stop();
    const downAt = Date.now();
    const health = await world.healthWhileDown('nats', 10_000);
    expect(health).toEqual({ status: 503, body: { status: 'degraded', down: ['nats'] } });
    await new Promise((r) => setTimeout(r, Math.max(0, downAt + 5_000 - Date.now())));
    await nats.start();
    console.log(`[outage] nats-server back after ${Date.now() - downAt} ms`);
    // Commands again as soon as it is back: the selections held back, and new blogs.
    await world.release();
    await world.create(6, 'nats-after');
    await world.allDone(90_000);
    await world.verify();
  }, 150_000);
});
