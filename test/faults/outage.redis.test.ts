/**
 * Redis (the shared provider limits, `REDIS_URL` set) stopped for 30 s mid-work, a private one (the shared server is
 * never touched): provider calls wait for it (the limits are never relaxed to local ones: no limited call starts
 * while it is gone), nothing fails, nothing is repeated, one post per blog, every event in order, and `/healthz`
 * names Redis while it is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOutageWorld, type OutageWorld } from '../support/outage.scenario';
import { outageTestProblem, startPrivateRedis, type PrivateServer } from '../support/private.servers';
import { requireNats, requirePostgres, type PostgresHandle } from '../support/servers';

const [db, nats] = await Promise.all([requirePostgres(), requireNats()]);
const problem = outageTestProblem('Redis', db && nats ? undefined : 'no PostgreSQL or NATS server');
if (problem) await db?.drop(); // not used: leave no database behind

/** A call the limiter let through may reach the fake a moment after Redis stopped. */
const IN_FLIGHT_SLACK_MS = 300;

describe.skipIf(problem !== undefined)('Redis stopped for 30 s with REDIS_URL set (private server)', () => {
  let redis: PrivateServer;
  let world: OutageWorld;
  const database = db as PostgresHandle;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    world = await startOutageWorld({ databaseUrl: database.url, natsUrl: nats!.url, redisUrl: redis.url });
  });
  afterAll(async () => {
    await world?.close();
    await redis?.remove();
    await database?.drop();
  });

  it('waits for Redis without relaxing the limits: every blog DONE, nothing repeated or extra', async () => {
    const spread = await world.spreadOverEveryStage('redis');
    console.log(`[outage] stopping Redis for 30 s with blogs ${JSON.stringify(spread)}`);
    await redis.stop();
    const downAt = Date.now();
    const health = await world.healthWhileDown('redis', 10_000);
    expect(health).toEqual({ status: 503, body: { status: 'degraded', down: ['redis'] } });
    await world.release();
    await world.create(6, 'redis-during');
    await new Promise((r) => setTimeout(r, Math.max(0, downAt + 30_000 - Date.now())));
    const upAt = Date.now();
    await redis.start();

    // Limited calls (OpenAI, Replicate creates, every Wix call) that started while Redis was gone: none.
    const during = (at: number) => at > downAt + IN_FLIGHT_SLACK_MS && at < upAt;
    const started = {
      openai: world.openai.completions().filter((r) => during(r.at)).length,
      replicate: world.replicate.creates().filter((r) => during(r.at)).length,
      wix: world.wix.requests.filter((r) => during(r.startedAt)).length,
    };
    expect(started).toEqual({ openai: 0, replicate: 0, wix: 0 });

    await world.allDone(90_000);
    await world.verify();
    // The default concurrency limits held throughout: 8 OpenAI calls at once, 4 Wix calls per store.
    expect(world.openai.maxInFlight()).toBeLessThanOrEqual(8);
    for (let s = 0; s < 4; s++) expect(world.wix.maxInFlight(`store-${s}`)).toBeLessThanOrEqual(4);
  }, 150_000);
});
