/**
 * PostgreSQL going away mid-work, on its own private cluster (the shared one is never touched): an immediate
 * shutdown (crash recovery at the next start) for 5 s, then for 60 s (a managed failover takes 30–60 s), each with
 * blogs in every stage and commands arriving over JetStream meanwhile. Nothing fails, no attempt is spent, no
 * provider call is repeated, one post per blog, every event in order, and `/healthz` says what is wrong meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOutageWorld, type OutageWorld } from '../support/outage.scenario';
import { outageTestProblem, startPrivatePostgres, type PrivateServer } from '../support/private.servers';
import { requireNats } from '../support/servers';

const nats = await requireNats();
const problem = outageTestProblem('PostgreSQL', nats ? undefined : 'no NATS server');

describe.skipIf(problem !== undefined)('PostgreSQL outages (private cluster, runtime as its own process)', () => {
  let postgres: PrivateServer;
  let world: OutageWorld;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    world = await startOutageWorld({ databaseUrl: postgres.url, natsUrl: nats!.url });
  });
  afterAll(async () => {
    await world?.close();
    await postgres?.remove();
  });

  /** Stops PostgreSQL at once with blogs in every stage, sends commands while it is down, starts it again. */
  async function outage(tag: string, downMs: number) {
    const spread = await world.spreadOverEveryStage(tag);
    console.log(`[outage] ${tag}: stopping PostgreSQL for ${downMs} ms with blogs ${JSON.stringify(spread)}`);
    await postgres.stop('immediate');
    const downAt = Date.now();
    const health = await world.healthWhileDown('postgres', Math.min(downMs, 10_000));
    expect(health).toEqual({ status: 503, body: { status: 'degraded', down: ['postgres'] } });
    // Commands keep arriving: the selections held back, and new blogs.
    const selections = await world.release();
    await world.create(6, `${tag}-during`);
    await new Promise((r) => setTimeout(r, Math.max(0, downAt + downMs - Date.now())));
    await postgres.start();
    console.log(
      `[outage] ${tag}: PostgreSQL back after ${Date.now() - downAt} ms (${selections} selections sent meanwhile)`,
    );
  }

  async function rideOut(tag: string, downMs: number, recoverMs: number) {
    await outage(tag, downMs);
    const startedAt = Date.now();
    await world.allDone(recoverMs);
    console.log(`[outage] ${tag}: all ${world.created.length} blogs DONE ${Date.now() - startedAt} ms after restart`);
    await world.verify();
  }

  it(
    'rides out a 5 s immediate shutdown: every blog DONE, nothing repeated or extra',
    () => rideOut('pg5', 5_000, 90_000),
    150_000,
  );

  it(
    'rides out a 60 s immediate shutdown: every blog DONE, nothing repeated or extra',
    () => rideOut('pg60', 60_000, 120_000),
    240_000,
  );
});
