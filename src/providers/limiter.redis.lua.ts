/**
 * The Lua scripts of the provider limiter's Redis gates (limiter.redis.ts says what the keys hold and why), and the
 * ioredis client type with them defined as commands.
 */
import type { Redis } from 'ioredis';

export const ACQUIRE = `
local sem, win = KEYS[1], KEYS[2]
local conc, rpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local windowMs, leaseMs, id = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', sem, '-inf', now)
redis.call('ZREMRANGEBYSCORE', win, '-inf', now - windowMs)
if redis.call('ZCARD', sem) >= conc then
  local first = redis.call('ZRANGE', sem, 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now, 1}
end
if redis.call('ZCARD', win) >= rpm then
  local first = redis.call('ZRANGE', win, 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) + windowMs - now, 2}
end
redis.call('ZADD', sem, now + leaseMs, id)
redis.call('PEXPIRE', sem, leaseMs * 2)
redis.call('ZADD', win, now, id)
redis.call('PEXPIRE', win, windowMs + 1000)
return {1, now, 0}
`;

/** Frees the lease and moves its start to its latest possible arrival (min(now, start + slack)); returns it, or -1. */
export const RELEASE = `
local sem, win, id, slack = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
redis.call('ZREM', sem, id)
local start = redis.call('ZSCORE', win, id)
if not start then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = math.min(now, tonumber(start) + slack)
redis.call('ZADD', win, 'XX', at, id)
return at
`;

/** ARGV: leaseMs, windowMs, number of leases, lease ids..., then (start time, id) pairs. Returns starts re-added. */
export const RENEW = `
local sem, win = KEYS[1], KEYS[2]
local leaseMs, windowMs, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, n do
  redis.call('ZADD', sem, now + leaseMs, ARGV[3 + i])
end
if n > 0 then redis.call('PEXPIRE', sem, leaseMs * 2) end
local added = 0
local i = 4 + n
while i < #ARGV do
  local at = tonumber(ARGV[i])
  if at > now - windowMs then
    added = added + redis.call('ZADD', win, 'NX', at, ARGV[i + 1])
  end
  i = i + 2
end
if #ARGV > 3 + n then redis.call('PEXPIRE', win, windowMs + 1000) end
return added
`;

export type Scripted = Redis & {
  inkwellLimiterAcquire(
    sem: string,
    win: string,
    concurrency: number,
    rpm: number,
    windowMs: number,
    leaseMs: number,
    id: string,
  ): Promise<[number, number, number]>;
  inkwellLimiterRenew(sem: string, win: string, ...args: (string | number)[]): Promise<number>;
  inkwellLimiterRelease(sem: string, win: string, id: string, slackMs: number): Promise<number>;
};
