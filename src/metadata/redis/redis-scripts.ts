/**
 * The changes that must look at what is there before writing (is this tag new? what size did
 * the blob have? which repositories link this digest?) run as Lua scripts: Redis executes a
 * script atomically, so two replicas never interleave a read and a write the way a client-side
 * read-modify-write would. Everything else is plain commands, batched in MULTI.
 *
 * A few scripts build keys from names they read (a repository's link set, a subject's referrer
 * set), which needs every key in one Redis: standalone or Sentinel, not Cluster.
 */
import type { Redis } from 'ioredis';

const SCRIPTS = {
  /**
   * Upserts tags of any number of repositories in one atomic step (a batch of an import is one
   * round trip, not a thousand). KEYS: tagRepositories, catalog, counters, then tags and
   * tagNames of each repository in turn. ARGV, per repository in the same order: repository,
   * count, then count pairs of tag and record JSON.
   */
  tagSetMany: {
    numberOfKeys: undefined,
    lua: `
      local added, k, a = 0, 4, 1
      while a <= #ARGV do
        local repository, count = ARGV[a], tonumber(ARGV[a + 1])
        local tags, names = KEYS[k], KEYS[k + 1]
        a, k = a + 2, k + 2
        for _ = 1, count do
          if redis.call('HSET', tags, ARGV[a], ARGV[a + 1]) == 1 then
            redis.call('ZADD', names, 0, ARGV[a])
            added = added + 1
          end
          a = a + 2
        end
        if count > 0 then redis.call('ZADD', KEYS[1], 0, repository) end
        redis.call('ZADD', KEYS[2], 0, repository)
      end
      if added > 0 then redis.call('HINCRBY', KEYS[3], 'tags', added) end
      return added`,
  },
  /** KEYS: uploadClaim(id). ARGV: holder, ttl in ms. Returns 1 when the claim is the holder's now (new, or extended). */
  uploadClaim: {
    numberOfKeys: 1,
    lua: `
      local current = redis.call('GET', KEYS[1])
      if current and current ~= ARGV[1] then return 0 end
      redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
      return 1`,
  },
  /** KEYS: uploadClaim(id). ARGV: holder. Deletes the claim only when it is the holder's. */
  uploadUnclaim: {
    numberOfKeys: 1,
    lua: `
      if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
      return 0`,
  },
  /** KEYS: tags, tagNames, tagRepositories, counters. ARGV: tag, repository. Returns 1 when the tag existed. */
  tagDelete: {
    numberOfKeys: 4,
    lua: `
      if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
      redis.call('ZREM', KEYS[2], ARGV[1])
      redis.call('HINCRBY', KEYS[4], 'tags', -1)
      if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[2]) end
      return 1`,
  },
  /** KEYS: linkedTo(digest). ARGV: digest, linksOf prefix. */
  linksRemoveDigest: {
    numberOfKeys: 1,
    lua: `
      for _, repository in ipairs(redis.call('SMEMBERS', KEYS[1])) do
        redis.call('SREM', ARGV[2] .. repository, ARGV[1])
      end
      redis.call('DEL', KEYS[1])
      return 0`,
  },
  /** KEYS: manifests. ARGV: digest, record JSON, subject or '', referrers prefix. */
  manifestPut: {
    numberOfKeys: 1,
    lua: `
      local old = redis.call('HGET', KEYS[1], ARGV[1])
      if old then
        local subject = cjson.decode(old).subject
        if subject then redis.call('SREM', ARGV[4] .. subject, ARGV[1]) end
      end
      redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
      if ARGV[3] ~= '' then redis.call('SADD', ARGV[4] .. ARGV[3], ARGV[1]) end
      return 0`,
  },
  /** KEYS: manifests. ARGV: digest, referrers prefix. */
  manifestDelete: {
    numberOfKeys: 1,
    lua: `
      local old = redis.call('HGET', KEYS[1], ARGV[1])
      if not old then return 0 end
      local subject = cjson.decode(old).subject
      if subject then redis.call('SREM', ARGV[2] .. subject, ARGV[1]) end
      redis.call('HDEL', KEYS[1], ARGV[1])
      return 1`,
  },
  /**
   * KEYS: blobSizes, blobsLru, blobsRetained, counters. ARGV: digest, size, usedAt or '',
   * retained ('' keep, '0', '1'), now. A blob is in exactly one of the two sorted sets.
   */
  blobPut: {
    numberOfKeys: 4,
    lua: `
      local digest, size = ARGV[1], tonumber(ARGV[2])
      local oldSize = redis.call('HGET', KEYS[1], digest)
      local lruScore = redis.call('ZSCORE', KEYS[2], digest)
      local keptScore = redis.call('ZSCORE', KEYS[3], digest)
      local wasRetained = keptScore ~= false
      local usedAt = ARGV[3]
      if usedAt == '' then usedAt = lruScore or keptScore or ARGV[5] end
      local retained = ARGV[4] == '1' or (ARGV[4] == '' and wasRetained)
      redis.call('HSET', KEYS[1], digest, size)
      if retained then
        redis.call('ZREM', KEYS[2], digest)
        redis.call('ZADD', KEYS[3], usedAt, digest)
      else
        redis.call('ZREM', KEYS[3], digest)
        redis.call('ZADD', KEYS[2], usedAt, digest)
      end
      local old = tonumber(oldSize) or 0
      if not oldSize then redis.call('HINCRBY', KEYS[4], 'blobs', 1) end
      redis.call('HINCRBY', KEYS[4], 'blobBytes', size - old)
      local keptBefore = 0
      if wasRetained then keptBefore = old end
      local keptNow = 0
      if retained then keptNow = size end
      redis.call('HINCRBY', KEYS[4], 'retainedBytes', keptNow - keptBefore)
      return 0`,
  },
  /** KEYS: blobSizes, blobsLru, blobsRetained, counters. ARGV: '1' retain or '0' release, digests... */
  blobSetRetained: {
    numberOfKeys: 4,
    lua: `
      local from, to, sign = KEYS[2], KEYS[3], 1
      if ARGV[1] == '0' then from, to, sign = KEYS[3], KEYS[2], -1 end
      local moved = 0
      for i = 2, #ARGV do
        local score = redis.call('ZSCORE', from, ARGV[i])
        if score then
          redis.call('ZREM', from, ARGV[i])
          redis.call('ZADD', to, score, ARGV[i])
          moved = moved + tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or 0)
        end
      end
      if moved ~= 0 then redis.call('HINCRBY', KEYS[4], 'retainedBytes', sign * moved) end
      return 0`,
  },
  /** KEYS: blobSizes, blobsLru, blobsRetained, counters. ARGV: digest. Returns 1 when the record existed. */
  blobDelete: {
    numberOfKeys: 4,
    lua: `
      local size = redis.call('HGET', KEYS[1], ARGV[1])
      if not size then return 0 end
      redis.call('HDEL', KEYS[1], ARGV[1])
      redis.call('ZREM', KEYS[2], ARGV[1])
      local kept = redis.call('ZREM', KEYS[3], ARGV[1])
      redis.call('HINCRBY', KEYS[4], 'blobs', -1)
      redis.call('HINCRBY', KEYS[4], 'blobBytes', -tonumber(size))
      if kept == 1 then redis.call('HINCRBY', KEYS[4], 'retainedBytes', -tonumber(size)) end
      return 1`,
  },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
type ScriptArgument = string | number;

/** Registers the scripts (ioredis sends EVALSHA, and the script itself once per connection). */
export function defineScripts(redis: Redis): void {
  for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
}

/**
 * Runs a script now. defineCommand adds methods TypeScript cannot see, hence the one cast here.
 * A script defined without a key count takes it as its first argument.
 */
export function runScript(redis: Redis, name: ScriptName, keys: string[], args: ScriptArgument[]): Promise<unknown> {
  const counted = SCRIPTS[name].numberOfKeys === undefined ? [keys.length, ...keys] : keys;
  return (redis as unknown as Record<ScriptName, (...parts: ScriptArgument[]) => Promise<unknown>>)[name](...counted, ...args);
}
