/**
 * `npm run chaos`: the long chaos run against PostgreSQL and NATS (DATABASE_URL, NATS_URL or localhost).
 * Flags: --blogs 200 --stores 20 --seconds 60 --kill-every 3 --lease-ttl 3000 --scale 5.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { runChaos } from '../test/support/chaos';

const { values } = parseArgs({
  options: {
    blogs: { type: 'string', default: '200' },
    stores: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '60' },
    'kill-every': { type: 'string', default: '3' },
    'lease-ttl': { type: 'string', default: '3000' },
    scale: { type: 'string', default: '5' },
  },
});
const admin = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `inkwell_chaos_${randomBytes(4).toString('hex')}`;
const client = new pg.Client({ connectionString: admin });
await client.connect();
await client.query(`create database "${database}"`);
const url = new URL(admin);
url.pathname = `/${database}`;
try {
  const report = await runChaos({
    databaseUrl: url.toString(),
    natsUrl: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    prefix: `chaos_${randomBytes(3).toString('hex')}`,
    blogs: Number(values.blogs),
    stores: Number(values.stores),
    durationMs: Number(values.seconds) * 1000,
    killEveryMs: Number(values['kill-every']) * 1000,
    leaseTtlMs: Number(values['lease-ttl']),
    latencyScale: Number(values.scale),
    settleTimeoutMs: 120_000,
    say: (line) => console.log(line),
  });
  console.log(JSON.stringify(report, null, 2));
  process.exitCode = report.problems.length === 0 ? 0 : 1;
} finally {
  await client.query(`drop database if exists "${database}" with (force)`);
  await client.end();
}
