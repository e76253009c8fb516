import net from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { describeWithPostgres, requireNats, requirePostgres, requireRedis } from '../support/servers';

describe('test servers (needs PostgreSQL, NATS and Redis)', () => {
  it('creates a fresh PostgreSQL database, connects to it and drops it', async ({ skip }) => {
    const handle = await requirePostgres();
    if (handle === undefined) return skip('no PostgreSQL'); // not CI: the helper already said why
    expect(handle.database).toMatch(/^inkwell_test_[0-9a-f]{12}$/);

    const client = new pg.Client({ connectionString: handle.url });
    await client.connect();
    const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
    expect(rows[0]?.db).toBe(handle.database);
    // an open connection must not stop drop(): it is terminated
    client.on('error', () => undefined);

    await handle.drop();
    await handle.drop();
    await client.end().catch(() => undefined);
    await expect(connectTo(handle.url)).rejects.toThrow(/does not exist/);
  });

  it('gives every caller its own database', async ({ skip }) => {
    const [a, b] = await Promise.all([requirePostgres(), requirePostgres()]);
    if (a === undefined || b === undefined) return skip('no PostgreSQL');
    try {
      expect(a.database).not.toBe(b.database);
    } finally {
      await Promise.all([a.drop(), b.drop()]);
    }
  });

  it('finds NATS and hands out a fresh subject prefix each time', async ({ skip }) => {
    const [a, b] = await Promise.all([requireNats(), requireNats()]);
    if (a === undefined || b === undefined) return skip('no NATS');
    expect(a.prefix).toMatch(/^t_[0-9a-f]{12}$/);
    expect(a.prefix).not.toBe(b.prefix);
    await expect(tcpGreeting(a.url)).resolves.toMatch(/^INFO .*"jetstream":true/);
  });

  it('finds Redis and hands out a fresh key prefix', async ({ skip }) => {
    const redis = await requireRedis();
    if (redis === undefined) return skip('no Redis');
    expect(redis.prefix).toMatch(/^t_[0-9a-f]{12}$/);
    await expect(redisPing(redis.url)).resolves.toBe('+PONG');
  });
});

await describeWithPostgres('describeWithPostgres (needs PostgreSQL)', (db) => {
  it('hands the block a database that exists for its whole life', async () => {
    await expect(connectTo(db().url)).resolves.toBe(db().database);
  });
});

async function connectTo(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
    return rows[0]?.db ?? '';
  } finally {
    await client.end();
  }
}

/** The first line a server sends on connect (NATS greets with INFO). */
function tcpGreeting(url: string): Promise<string> {
  return talk(url, 4222, undefined);
}

function redisPing(url: string): Promise<string> {
  return talk(url, 6379, 'PING\r\n');
}

function talk(url: string, defaultPort: number, send: string | undefined): Promise<string> {
  const target = new URL(url.split(',')[0] ?? url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port) || defaultPort });
    let received = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('connect', () => {
      if (send !== undefined) socket.write(send);
    });
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      const line = received.indexOf('\r\n');
      if (line >= 0) {
        socket.destroy();
        resolve(received.slice(0, line));
      }
    });
    socket.on('error', reject);
  });
}
