/**
 * The token window's steps in Redis, shared by every process using the same Redis, prefix and name (Redis server
 * time, one Lua script per step, one hash tag so it also works on a Redis Cluster):
 *   `<prefix>:tpm:{<name>}`          sorted set of entries, member `<id>:<tokens>`, score = when counted (ms)
 *   `<prefix>:tpm:{<name>}:cap`      the provider's own limit (`x-ratelimit-limit-tokens`), -1: it sends none
 *   `<prefix>:tpm:{<name>}:foreign`  tokens the provider counted that are not ours (another client on the key);
 *                                    `:foreign:last` what the last answer said
 *   `<prefix>:tpm:{<name>}:pause`    no new reservation while it lives (after a 429 for tokens)
 *   `<prefix>:tpm:{<name>}:probe`    the one call in flight while the provider's limit is not known yet
 * token.window.ts describes what each means.
 */
import { Redis } from 'ioredis';
import { FOREIGN_NOISE, type ProviderTokens, type WindowSteps } from './token.window.port';

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * KEYS: win, cap, foreign, pause, probe. ARGV: window, tpm, tokens, id, probeMs.
 * Returns 0 when taken, else how long to wait (ms). Entries are kept for two windows (see SETTLE), counted for one.
 */
const RESERVE = `${NOW}
local window, limit, tokens, id = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local paused = redis.call('PTTL', KEYS[4])
if paused > 0 then return paused end
local cap = tonumber(redis.call('GET', KEYS[2]) or 'x')
if cap ~= nil and cap > 0 and cap < limit then limit = cap end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 2 * window)
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - window), '+inf', 'WITHSCORES')
local sum = 0
for i = 1, #entries, 2 do sum = sum + tonumber(string.match(entries[i], ':(%d+)$')) end
local foreign = tonumber(redis.call('GET', KEYS[3]) or '0')
if sum + foreign + tokens <= limit or (#entries == 0 and foreign == 0) then
  if cap == nil and redis.call('SET', KEYS[5], id, 'NX', 'PX', ARGV[5]) == false then
    return math.max(1, math.min(redis.call('PTTL', KEYS[5]), 250))
  end
  redis.call('ZADD', KEYS[1], now, id .. ':' .. tokens)
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return 0
end
local hint = window
if foreign > 0 then hint = math.max(1, redis.call('PTTL', KEYS[3])) end
local need, freed = sum + foreign + tokens - limit, 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
  if freed >= need then return math.min(hint, math.max(1, tonumber(entries[i + 1]) + window - now + 1)) end
end
return hint`;

/**
 * KEYS: win, cap, foreign, probe, last foreign seen. ARGV: id, old tokens, new tokens, window, slack, capMs, then what the provider
 * said: limit, remaining, 'none' when it answered without the headers, and its processing time. Ours, for what the
 * provider counted beyond it: every entry of ours in the window when this call reserved, and every one since
 * (token.window.ts). Moves the entry to now − processing (not before its time), else min(now, its time + slack)
 * (`arrivedBy` in token.window.ts) with the new tokens (dropped at 0), frees the probe, records the
 * provider's limit and the tokens it counted beyond ours (when two answers in a row say so).
 */
const SETTLE = `${NOW}
local id, old, new = ARGV[1], ARGV[2], tonumber(ARGV[3])
local window, slack, capMs = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local score = redis.call('ZSCORE', KEYS[1], id .. ':' .. old)
local own = 0
if score then
  local mine = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (tonumber(score) - window), '+inf')
  for i = 1, #mine do own = own + tonumber(string.match(mine[i], ':(%d+)$')) end
end
redis.call('ZREM', KEYS[1], id .. ':' .. old)
local at = now
if score and ARGV[10] ~= '' then at = math.max(tonumber(score), now - tonumber(ARGV[10]))
elseif score then at = math.min(now, tonumber(score) + slack) end
if new > 0 then
  redis.call('ZADD', KEYS[1], at, id .. ':' .. new)
  redis.call('PEXPIRE', KEYS[1], window * 2)
end
if redis.call('GET', KEYS[4]) == id then redis.call('DEL', KEYS[4]) end
if ARGV[7] ~= '' then
  local limit = tonumber(ARGV[7])
  redis.call('SET', KEYS[2], limit, 'PX', capMs)
  if ARGV[8] ~= '' and score then
    local seen = limit - tonumber(ARGV[8]) - own
    local last = tonumber(redis.call('GET', KEYS[5]) or 'x')
    redis.call('SET', KEYS[5], math.floor(seen), 'PX', window)
    local foreign = seen
    if last ~= nil then foreign = math.min(seen, last) end
    if foreign > limit * ${FOREIGN_NOISE} then
      redis.call('SET', KEYS[3], math.floor(foreign), 'PX', window)
    else
      redis.call('DEL', KEYS[3])
    end
  end
elseif ARGV[9] == 'none' then
  redis.call('SET', KEYS[2], -1, 'PX', capMs)
end
return 1`;

/** KEYS: pause. ARGV: ms. Lengthens the pause to at least `ms` from now. */
const PAUSE = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], 1, 'PX', ARGV[1]) end
return 1`;

type Scripted = Redis & {
  inkwellTpmReserve(...args: (string | number)[]): Promise<number>;
  inkwellTpmSettle(...args: (string | number)[]): Promise<number>;
  inkwellTpmPause(key: string, ms: number): Promise<number>;
};

/** The steps of one window in Redis; `conf` as in TokenWindowOptions. */
export function redisSteps(
  conf: { url: string; prefix?: string },
  opts: { name: string; tpm: number; windowMs: number; slackMs: number; probeMs: number; capMs: number },
): WindowSteps {
  const redis = new Redis(conf.url, {
    connectionName: `inkwell-tpm-${opts.name}`,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
  }) as Scripted;
  redis.on('error', () => undefined); // outages surface as failed steps, which wait and try again
  redis.defineCommand('inkwellTpmReserve', { numberOfKeys: 5, lua: RESERVE });
  redis.defineCommand('inkwellTpmSettle', { numberOfKeys: 5, lua: SETTLE });
  redis.defineCommand('inkwellTpmPause', { numberOfKeys: 1, lua: PAUSE });
  const win = `${conf.prefix ?? 'inkwell'}:tpm:{${opts.name}}`;
  const [cap, foreign, pause, probe] = [`${win}:cap`, `${win}:foreign`, `${win}:pause`, `${win}:probe`];
  return {
    async tryReserve(id, tokens) {
      const wait = await redis.inkwellTpmReserve(
        ...[win, cap, foreign, pause, probe],
        ...[opts.windowMs, opts.tpm, tokens, id, opts.probeMs],
      );
      return wait === 0 ? { ok: true } : { ok: false, waitMs: Number(wait) };
    },
    async settle(id, old, tokens, seen?: ProviderTokens | null) {
      await redis.inkwellTpmSettle(
        ...[win, cap, foreign, probe, `${foreign}:last`],
        ...[id, old, tokens, opts.windowMs, opts.slackMs, opts.capMs],
        ...[seen?.limit ?? '', seen?.remaining ?? '', seen === null ? 'none' : '', seen?.processingMs ?? ''],
      );
    },
    async pause(ms) {
      await redis.inkwellTpmPause(pause, Math.max(1, Math.ceil(ms)));
    },
    async stop() {
      redis.disconnect();
    },
  };
}
