/**
 * Needs Redis: the provider limiter's shared limits across processes (two in-process limiters + one child process
 * via `node --import tsx`), recovery after its keys are deleted mid-run, slots of a dead instance coming back after
 * the lease TTL, and (when the `redis-server` binary is here) a private Redis killed and restarted mid-run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createProviderLimiter, type LimiterLog, type ProviderLimiter } from '../../src/providers/limiter';
import { startPrivateRedis } from '../support/private.servers';
import { describeWithRedis } from '../support/servers';

const ROOT = new URL('../..', import.meta.url).pathname;
const LIMITER_URL = new URL('../../src/providers/limiter.ts', import.meta.url).href;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Interval {
  s: number;
  e: number;
}

/** Most intervals in flight at any start (an interval ending at t is over before one starting at t). */
function maxOverlap(all: Interval[], from = -Infinity): number {
  let max = 0;
  for (const a of all) {
    if (a.s < from) continue;
    max = Math.max(max, all.filter((b) => b.s <= a.s && b.e > a.s).length);
  }
  return max;
}

/** Most starts inside any window [t, t + windowMs) whose first start is at or after `from`. */
function maxStartsInWindow(starts: number[], windowMs: number, from = -Infinity): number {
  const s = [...starts].sort((a, b) => a - b);
  let max = 0;
  for (const t of s) if (t >= from) max = Math.max(max, s.filter((u) => u >= t && u < t + windowMs).length);
  return max;
}

/** Calls that record their own interval. */
function recorder() {
  const intervals: Interval[] = [];
  return {
    intervals,
    call(ms: number) {
      return async (): Promise<void> => {
        const s = Date.now();
        await sleep(ms);
        intervals.push({ s, e: Date.now() });
      };
    },
  };
}

const CHILD_SOURCE = `
import { createProviderLimiter } from ${JSON.stringify(LIMITER_URL)};
import { createInterface } from 'node:readline';
const cfg = JSON.parse(process.env.LIMITER_CHILD);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const limiter = createProviderLimiter({
  name: cfg.name, concurrency: cfg.concurrency, rpm: cfg.rpm, windowMs: cfg.windowMs, leaseMs: cfg.leaseMs,
  redis: { url: cfg.url, prefix: cfg.prefix },
});
const stdin = createInterface({ input: process.stdin });
say({ ev: 'ready' });
await new Promise((resolve) => stdin.once('line', resolve));
stdin.close();
await Promise.all(Array.from({ length: cfg.calls }, (_, i) => limiter.limit('child-' + (i % 3), async () => {
  const s = Date.now();
  say({ ev: 'start', t: s });
  await new Promise((r) => setTimeout(r, cfg.hold ? 3_600_000 : cfg.callMs));
  say({ ev: 'end', s, e: Date.now() });
})));
await limiter.stop();
say({ ev: 'done' });
`;

interface ChildConfig {
  url: string;
  prefix: string;
  name: string;
  concurrency: number;
  rpm: number;
  windowMs: number;
  leaseMs: number;
  calls: number;
  callMs: number;
  hold?: boolean;
}

interface ChildEvent {
  ev: 'ready' | 'start' | 'end' | 'done';
  t?: number;
  s?: number;
  e?: number;
}

interface Child {
  proc: ChildProcess;
  events: ChildEvent[];
  output: string[];
  exited: Promise<number | null>;
  waitFor(predicate: (events: ChildEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  go(): void;
}

let childDir: string;
const children: Child[] = [];

function startChild(cfg: ChildConfig): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(childDir, 'limiter.child.mjs')], {
    cwd: ROOT,
    env: { ...process.env, LIMITER_CHILD: JSON.stringify(cfg) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const events: ChildEvent[] = [];
  const output: string[] = [];
  const waiters = new Set<() => void>();
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  createInterface({ input: proc.stdout }).on('line', (line) => {
    output.push(line);
    try {
      events.push(JSON.parse(line) as ChildEvent);
    } catch {
      return;
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const child: Child = {
    proc,
    events,
    output,
    exited,
    waitFor: (predicate, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(events)) return resolve();
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`child did not get there in ${timeoutMs} ms:\n${output.join('\n')}`));
        }, timeoutMs);
        const check = () => {
          if (!predicate(events)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        void exited.then(() => check());
      }),
    go: () => proc.stdin?.write('go\n'),
  };
  children.push(child);
  return child;
}

function childIntervals(child: Child): Interval[] {
  return child.events.filter((e) => e.ev === 'end').map((e) => ({ s: e.s!, e: e.e! }));
}

async function deleteKeys(admin: Redis, prefix: string): Promise<number> {
  const keys = await admin.keys(`${prefix}:*`);
  return keys.length > 0 ? admin.del(...keys) : 0;
}

function quietLog(): LimiterLog & { errors: string[]; infos: string[] } {
  const errors: string[] = [];
  const infos: string[] = [];
  return {
    errors,
    infos,
    info: (_o, m) => infos.push(m),
    warn: (_o, m) => errors.push(m),
    error: (_o, m) => errors.push(m),
  };
}

await describeWithRedis('provider limiter shared through Redis', (redis) => {
  let admin: Redis;
  let n = 0;
  let prefix = '';
  const limiters: ProviderLimiter[] = [];
  const make = (o: Partial<Parameters<typeof createProviderLimiter>[0]> & { concurrency: number; rpm: number }) => {
    const limiter = createProviderLimiter({
      name: 'openai',
      redis: { url: redis().url, prefix },
      log: quietLog(),
      ...o,
    });
    limiters.push(limiter);
    return limiter;
  };

  beforeAll(() => {
    admin = new Redis(redis().url);
    childDir = mkdtempSync(join(tmpdir(), 'inkwell-limiter-'));
    writeFileSync(join(childDir, 'limiter.child.mjs'), CHILD_SOURCE);
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
      await child.exited;
    }
    await Promise.all(limiters.splice(0).map((l) => l.stop()));
    await deleteKeys(admin, prefix);
    prefix = `${redis().prefix}_${++n}`;
  });
  afterAll(async () => {
    await admin?.quit();
    if (childDir) rmSync(childDir, { recursive: true, force: true });
  });
  beforeAll(() => {
    prefix = `${redis().prefix}_${++n}`;
  });

  it('two limiters and a child process stay within ONE concurrency limit together', async () => {
    const cfg = { name: 'openai', concurrency: 3, rpm: 10_000, windowMs: 60_000, leaseMs: 5_000 };
    const child = startChild({ ...cfg, url: redis().url, prefix, calls: 15, callMs: 40 });
    await child.waitFor((ev) => ev.some((e) => e.ev === 'ready'));
    const a = make(cfg);
    const b = make(cfg);
    const rec = recorder();
    child.go();
    await Promise.all([
      ...Array.from({ length: 15 }, (_, i) => a.limit(`a-${i % 3}`, rec.call(40))),
      ...Array.from({ length: 15 }, (_, i) => b.limit(`b-${i % 3}`, rec.call(40))),
      child.waitFor((ev) => ev.some((e) => e.ev === 'done')),
    ]);
    const all = [...rec.intervals, ...childIntervals(child)];
    expect(all).toHaveLength(45);
    expect(maxOverlap(all)).toBeLessThanOrEqual(3);
    expect(maxOverlap(all)).toBeGreaterThanOrEqual(2); // the limit was actually contended
    expect(childIntervals(child).length).toBe(15);
  });

  it('counts a call in the shared window from its end (its latest possible arrival), across two limiters', async () => {
    const cfg = { name: 'openai', concurrency: 5, rpm: 1, windowMs: 300, leaseMs: 5_000 };
    const a = make(cfg);
    const b = make(cfg);
    const rec = recorder();
    await Promise.all([a.limit('s', rec.call(100)), b.limit('s', rec.call(100))]);
    const [first, second] = [...rec.intervals].sort((x, y) => x.s - y.s);
    // Counted from its start only, the second could begin 200 ms after the first may have reached the provider.
    expect(second!.s - first!.e).toBeGreaterThanOrEqual(cfg.windowMs - 10);
  });

  it('two limiters and a child process stay within ONE rpm window together', async () => {
    const windowMs = 1_000;
    const cfg = { name: 'replicate', concurrency: 50, rpm: 8, windowMs, leaseMs: 5_000 };
    const child = startChild({ ...cfg, url: redis().url, prefix, calls: 8, callMs: 5 });
    await child.waitFor((ev) => ev.some((e) => e.ev === 'ready'));
    const a = make(cfg);
    const b = make(cfg);
    const rec = recorder();
    const began = Date.now();
    child.go();
    await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => a.limit(`a-${i % 2}`, rec.call(5))),
      ...Array.from({ length: 8 }, (_, i) => b.limit(`b-${i % 2}`, rec.call(5))),
      child.waitFor((ev) => ev.some((e) => e.ev === 'done')),
    ]);
    const starts = [...rec.intervals, ...childIntervals(child)].map((i) => i.s);
    expect(starts).toHaveLength(24);
    // Starts are recorded a Redis round trip after Redis counted them: allow 50 ms of that skew.
    expect(maxStartsInWindow(starts, windowMs - 50)).toBeLessThanOrEqual(8);
    expect(Date.now() - began).toBeGreaterThanOrEqual(2 * windowMs - 100); // 24 starts need three windows
  });

  it('keeps working when its keys are deleted mid-run, and the limits hold again afterwards', async () => {
    const windowMs = 1_000;
    const leaseMs = 600; // heartbeat every 200 ms
    const cfg = { name: 'wix', concurrency: 2, rpm: 20, windowMs, leaseMs, perStore: true };
    const a = make(cfg);
    const b = make(cfg);
    const rec = recorder();
    const runs = Promise.all([
      ...Array.from({ length: 20 }, () => a.limit('store-1', rec.call(60))),
      ...Array.from({ length: 20 }, () => b.limit('store-1', rec.call(60))),
    ]);
    await sleep(300);
    expect(await admin.exists(`${prefix}:limiter:{wix:store-1}:sem`)).toBe(1);
    const deletedAt = Date.now();
    expect(await deleteKeys(admin, prefix)).toBeGreaterThan(0);
    await runs;
    expect(rec.intervals).toHaveLength(40);
    // Every process re-asserts its leases and starts at its next heartbeat (leaseMs / 3): from then on, one limit.
    const settled = deletedAt + leaseMs / 3 + 100;
    expect(rec.intervals.filter((i) => i.s >= settled).length).toBeGreaterThan(10);
    expect(maxOverlap(rec.intervals, settled)).toBeLessThanOrEqual(2);
    const starts = rec.intervals.map((i) => i.s);
    expect(maxStartsInWindow(starts, windowMs - 50, settled)).toBeLessThanOrEqual(20);
    // Before the deletion the limits held too.
    expect(maxOverlap(rec.intervals.filter((i) => i.e <= deletedAt))).toBeLessThanOrEqual(2);
  });

  it('slots held by a child process killed with SIGKILL come back after the lease TTL', async () => {
    const leaseMs = 1_200;
    const cfg = { name: 'openai', concurrency: 2, rpm: 1_000, windowMs: 60_000, leaseMs };
    const child = startChild({ ...cfg, url: redis().url, prefix, calls: 2, callMs: 0, hold: true });
    await child.waitFor((ev) => ev.some((e) => e.ev === 'ready'));
    child.go();
    await child.waitFor((ev) => ev.filter((e) => e.ev === 'start').length === 2);
    const a = make(cfg);
    let startedAt = 0;
    const call = a.limit('store', async () => {
      startedAt = Date.now();
    });
    await sleep(leaseMs / 2);
    expect(startedAt).toBe(0); // the child's two live leases fill the semaphore
    const killedAt = Date.now();
    child.proc.kill('SIGKILL');
    await child.exited;
    await call;
    // The child renewed at most leaseMs / 3 before it died: its leases expire leaseMs/3..leaseMs after the kill.
    expect(startedAt - killedAt).toBeGreaterThanOrEqual(leaseMs / 3 - 100);
    expect(startedAt - killedAt).toBeLessThan(leaseMs + 1_000);
  });

  it('an instance stopped with calls in flight keeps their slots until the leases expire', async () => {
    const leaseMs = 900;
    const cfg = { name: 'openai', concurrency: 1, rpm: 1_000, windowMs: 60_000, leaseMs };
    const a = make(cfg);
    const b = make(cfg);
    let finishA: () => void = () => undefined;
    const held = a.limit('s', () => new Promise<void>((resolve) => (finishA = resolve)));
    await sleep(50);
    expect(a.running()).toBe(1);
    await a.stop(); // "dies": no heartbeat, no release
    const stoppedAt = Date.now();
    let startedAt = 0;
    await b.limit('s', async () => {
      startedAt = Date.now();
    });
    expect(startedAt - stoppedAt).toBeGreaterThanOrEqual(leaseMs / 3);
    expect(startedAt - stoppedAt).toBeLessThan(leaseMs + 1_000);
    finishA();
    await held;
  });

  const redisServer = spawnSync('redis-server', ['--version']).status === 0;
  it.skipIf(!redisServer)(
    'a Redis restart mid-run: calls wait while it is down (none start), then go on within the limits',
    async () => {
      const server = await startPrivateRedis();
      const serverUrl = server.url;
      try {
        const log = quietLog();
        const cfg = { name: 'openai', concurrency: 2, rpm: 1_000, windowMs: 60_000, leaseMs: 600 };
        const a = make({ ...cfg, log, redis: { url: serverUrl, prefix } });
        const b = make({ ...cfg, redis: { url: serverUrl, prefix } });
        const rec = recorder();
        const runs = Promise.all([
          ...Array.from({ length: 12 }, (_, i) => a.limit(`a${i % 2}`, rec.call(50))),
          ...Array.from({ length: 12 }, (_, i) => b.limit(`b${i % 2}`, rec.call(50))),
        ]);
        await sleep(150);
        const killedAt = Date.now();
        await server.stop();
        await sleep(800);
        const restartedAt = Date.now();
        await server.start();
        await runs;
        expect(rec.intervals).toHaveLength(24);
        // Fail safe by waiting: nothing started while Redis was gone (a call acquired just before may start).
        expect(rec.intervals.filter((i) => i.s > killedAt + 50 && i.s < restartedAt)).toHaveLength(0);
        expect(maxOverlap(rec.intervals)).toBeLessThanOrEqual(2);
        expect(log.errors.some((m) => m.includes('Redis is unreachable'))).toBe(true);
        expect(log.infos.some((m) => m.includes('answers again'))).toBe(true);
      } finally {
        await Promise.all(limiters.splice(0).map((l) => l.stop()));
        await server.remove();
      }
    },
  );
});
