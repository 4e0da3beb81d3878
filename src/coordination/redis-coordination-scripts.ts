/**
 * The Lua scripts of leases and upstream slots. Each compares and changes in one step, which
 * Redis runs atomically: a process never refreshes or deletes a lease, or a slot, that expired
 * and went to another process between a read and a write (compare the single-instance lock of
 * the Redis documentation, "Distributed Locks with Redis": delete only if the value is still ours).
 *
 * Slot expiry uses the Redis server's clock (TIME), so replicas whose clocks disagree still agree
 * on which slots have expired.
 */
import type { Redis } from 'ioredis';

const NOW_MS = `
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/** Keeps the set at least until its newest slot expires, so a fleet that stops leaves no key. */
const EXTEND_SET = `
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end`;

const SCRIPTS = {
  /** KEYS: lease. ARGV: value, ttlMs. Returns {1, value} when taken, {0, holder's value} when held. */
  leaseAcquire: {
    numberOfKeys: 1,
    lua: `
      if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, ARGV[1]} end
      return {0, redis.call('GET', KEYS[1])}`,
  },
  /** KEYS: lease. ARGV: value, ttlMs. Returns 1 when still ours (and extended), 0 when not. */
  leaseRefresh: {
    numberOfKeys: 1,
    lua: `
      if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
      return redis.call('PEXPIRE', KEYS[1], ARGV[2])`,
  },
  /**
   * KEYS: lease. ARGV: value, channel, message. Deletes and announces only a lease that is
   * still ours: a late release must not end the flight of a process that took over.
   */
  leaseRelease: {
    numberOfKeys: 1,
    lua: `
      if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
      redis.call('DEL', KEYS[1])
      redis.call('PUBLISH', ARGV[2], ARGV[3])
      return 1`,
  },
  /**
   * KEYS: slots. ARGV: token, limit, ttlMs. Reclaims expired slots (those of a process that
   * died), then takes one if fewer than `limit` remain. Returns 1 when the slot is ours.
   */
  slotAcquire: {
    numberOfKeys: 1,
    lua: `${NOW_MS}
      local ttl = tonumber(ARGV[3])
      redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
      local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
      if not mine and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
      redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])${EXTEND_SET}
      return 1`,
  },
  /** KEYS: slots. ARGV: token, ttlMs. Returns 1 when the slot was still ours (and extended). */
  slotRefresh: {
    numberOfKeys: 1,
    lua: `${NOW_MS}
      local ttl = tonumber(ARGV[2])
      if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
      redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])${EXTEND_SET}
      return 1`,
  },
  /** KEYS: slots. ARGV: token, channel, message. Frees the slot and wakes the fleet's waiters. */
  slotRelease: {
    numberOfKeys: 1,
    lua: `
      if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
      redis.call('PUBLISH', ARGV[2], ARGV[3])
      return 1`,
  },
} as const;

export type CoordinationScript = keyof typeof SCRIPTS;

/** Registers the scripts; ioredis sends each as EVAL once per connection, then EVALSHA, in order. */
export function defineCoordinationScripts(redis: Redis): void {
  for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
}

/** defineCommand adds methods TypeScript cannot see, hence the one cast here. */
export function runCoordinationScript(redis: Redis, name: CoordinationScript, keys: string[], args: Array<string | number>): Promise<unknown> {
  return (redis as unknown as Record<CoordinationScript, (...parts: Array<string | number>) => Promise<unknown>>)[name](...keys, ...args);
}
