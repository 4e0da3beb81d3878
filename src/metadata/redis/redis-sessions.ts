/**
 * Upload sessions, access verdicts and usage counters in Redis. Sessions are hashes indexed by
 * a sorted set of update times (for the sweep of abandoned uploads); verdicts are strings that
 * Redis expires itself (SET PX), which also bounds them; usage is HINCRBY per repository and
 * per total in one MULTI, so replicas adding at once never lose a count.
 */
import {
  emptyUsageCounts, type UploadSession, type UploadStore, type UsageCounts, type UsageReport, type UsageStore, type Verdict, type VerdictStore,
} from '../metadata-store.js';
import { compareNames } from '../memory/memory-metadata-store.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './redis-scripts.js';
import { failOnError } from './redis-tags.js';

export class RedisUploads implements UploadStore {
  constructor(private readonly connection: RedisConnection) {}

  async put(session: UploadSession): Promise<void> {
    const { keys } = this.connection;
    await this.connection.call(async (redis) => failOnError(await redis.multi()
      .hset(keys.upload(session.id), {
        repository: session.repository, writerId: session.writerId, offset: session.offset, startedAt: session.startedAt, updatedAt: session.updatedAt,
      })
      .zadd(keys.uploads, session.updatedAt, session.id)
      .exec()));
  }

  async get(id: string): Promise<UploadSession | undefined> {
    const fields = await this.connection.call((redis) => redis.hgetall(this.connection.keys.upload(id)));
    return sessionOf(id, fields);
  }

  async delete(id: string): Promise<void> {
    const { keys } = this.connection;
    await this.connection.call(async (redis) => failOnError(await redis.multi().del(keys.upload(id), keys.uploadClaim(id)).zrem(keys.uploads, id).exec()));
  }

  async claim(id: string, holder: string, ttlMs: number): Promise<boolean> {
    const claimed = await this.connection.call((redis) => runScript(redis, 'uploadClaim', [this.connection.keys.uploadClaim(id)], [holder, Math.max(1, Math.ceil(ttlMs))]));
    return claimed === 1;
  }

  async unclaim(id: string, holder: string): Promise<void> {
    await this.connection.call((redis) => runScript(redis, 'uploadUnclaim', [this.connection.keys.uploadClaim(id)], [holder]));
  }

  async olderThan(before: number): Promise<UploadSession[]> {
    const { keys } = this.connection;
    const ids = await this.connection.call((redis) => redis.zrangebyscore(keys.uploads, '-inf', `(${before}`));
    if (ids.length === 0) return [];
    const batch = this.connection.redis.pipeline();
    for (const id of ids) batch.hgetall(keys.upload(id));
    const all = failOnError(await this.connection.call(() => batch.exec())) as Array<Record<string, string>>;
    return ids.map((id, i) => sessionOf(id, all[i]!)).filter((session): session is UploadSession => session !== undefined);
  }
}

function sessionOf(id: string, fields: Record<string, string>): UploadSession | undefined {
  if (fields.repository === undefined) return undefined;
  return {
    id, repository: fields.repository, writerId: fields.writerId ?? '', offset: Number(fields.offset),
    startedAt: Number(fields.startedAt), updatedAt: Number(fields.updatedAt),
  };
}

export class RedisVerdicts implements VerdictStore {
  constructor(private readonly connection: RedisConnection) {}

  async get(repository: string): Promise<Verdict | undefined> {
    const json = await this.connection.call((redis) => redis.get(this.connection.keys.verdict(repository)));
    if (json === null) return undefined;
    const { readable, checkedAt } = JSON.parse(json) as Verdict;
    return { readable, checkedAt };
  }

  async set(repository: string, verdict: Verdict, ttlMs: number): Promise<void> {
    const key = this.connection.keys.verdict(repository);
    // PX needs a positive integer; a verdict that may not be kept is forgotten now.
    if (!(ttlMs > 0)) await this.connection.call((redis) => redis.del(key));
    else await this.connection.call((redis) => redis.set(key, JSON.stringify({ readable: verdict.readable, checkedAt: verdict.checkedAt }), 'PX', Math.ceil(ttlMs)));
  }
}

export class RedisUsage implements UsageStore {
  constructor(private readonly connection: RedisConnection) {}

  async add(batch: Map<string, UsageCounts>): Promise<void> {
    if (batch.size === 0) return;
    const { keys } = this.connection;
    const total = emptyUsageCounts();
    const multi = this.connection.redis.multi();
    for (const [repository, counts] of batch) {
      multi.hincrby(keys.usagePulls, repository, counts.pulls).hincrby(keys.usageHits, repository, counts.hits).hincrby(keys.usageMisses, repository, counts.misses);
      total.pulls += counts.pulls;
      total.hits += counts.hits;
      total.misses += counts.misses;
    }
    multi.hincrby(keys.counters, 'pulls', total.pulls).hincrby(keys.counters, 'hits', total.hits).hincrby(keys.counters, 'misses', total.misses);
    multi.hsetnx(keys.counters, 'usageSince', Date.now());
    failOnError(await this.connection.call(() => multi.exec()));
  }

  /** Reads every repository's counts and ranks them here: a report is rare, a count is not. */
  async report(top: number): Promise<UsageReport> {
    const { keys } = this.connection;
    const [pulls, hits, misses, totals] = await this.connection.call((redis) => Promise.all([
      redis.hgetall(keys.usagePulls), redis.hgetall(keys.usageHits), redis.hgetall(keys.usageMisses),
      redis.hmget(keys.counters, 'pulls', 'hits', 'misses', 'usageSince'),
    ]));
    const repositories = Object.keys(pulls)
      .map((repository) => ({ repository, pulls: Number(pulls[repository]), hits: Number(hits[repository] ?? 0), misses: Number(misses[repository] ?? 0) }))
      .sort((a, b) => b.pulls - a.pulls || b.hits + b.misses - (a.hits + a.misses) || compareNames(a.repository, b.repository))
      .slice(0, Math.max(0, top));
    return {
      since: Number(totals[3] ?? Date.now()),
      totals: { pulls: Number(totals[0] ?? 0), hits: Number(totals[1] ?? 0), misses: Number(totals[2] ?? 0) },
      repositories,
    };
  }
}
