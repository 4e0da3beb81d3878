/**
 * The blob index in Redis: a hash of sizes (membership), and recency in one of two sorted sets
 * scored by usedAt, one for blobs the LRU may evict and one for retained blobs. The LRU reads
 * the first with ZRANGE in O(log n + limit) and never sees a retained blob; equal scores come
 * back ordered by digest, as the contract asks. `touch` is ZADD XX GT on both sets: it only
 * updates blobs that exist and only moves recency forward, with no read first. Puts, deletes
 * and retain changes are scripts that keep the totals in `counters` in the same step.
 */
import type { BlobIndex, BlobRecord } from '../metadata-store.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './redis-scripts.js';
import { failOnError, scanHash, SCAN_PAGE } from './redis-tags.js';

export class RedisBlobs implements BlobIndex {
  constructor(private readonly connection: RedisConnection) {}

  async put(digest: string, size: number, options: { retained?: boolean; usedAt?: number } = {}): Promise<void> {
    const retained = options.retained === undefined ? '' : options.retained ? '1' : '0';
    await this.connection.call((redis) => runScript(redis, 'blobPut', this.#keys(), [digest, size, options.usedAt ?? '', retained, Date.now()]));
  }

  async get(digest: string): Promise<BlobRecord | undefined> {
    const { keys } = this.connection;
    const [size, lru, retained] = failOnError(await this.connection.call((redis) =>
      redis.multi().hget(keys.blobSizes, digest).zscore(keys.blobsLru, digest).zscore(keys.blobsRetained, digest).exec())) as Array<string | null>;
    if (size === null || size === undefined) return undefined;
    return { digest, size: Number(size), usedAt: Number(lru ?? retained ?? 0), retained: retained !== null };
  }

  async touch(digests: string[], at: number): Promise<void> {
    if (digests.length === 0) return;
    const { keys } = this.connection;
    const scored = digests.flatMap((digest) => [at, digest]);
    await this.connection.call(async (redis) => failOnError(await redis.multi()
      .zadd(keys.blobsLru, 'XX', 'GT', ...scored)
      .zadd(keys.blobsRetained, 'XX', 'GT', ...scored)
      .exec()));
  }

  async setRetained(digests: string[], retained: boolean): Promise<void> {
    if (digests.length === 0) return;
    await this.connection.call((redis) => runScript(redis, 'blobSetRetained', this.#keys(), [retained ? '1' : '0', ...digests]));
  }

  async delete(digest: string): Promise<boolean> {
    return (await this.connection.call((redis) => runScript(redis, 'blobDelete', this.#keys(), [digest]))) === 1;
  }

  async leastRecentlyUsed(limit: number): Promise<BlobRecord[]> {
    if (limit <= 0) return [];
    const { keys } = this.connection;
    const scored = await this.connection.call((redis) => redis.zrange(keys.blobsLru, 0, limit - 1, 'WITHSCORES'));
    if (scored.length === 0) return [];
    const digests = scored.filter((_, i) => i % 2 === 0);
    const sizes = await this.connection.call((redis) => redis.hmget(keys.blobSizes, ...digests));
    const records: BlobRecord[] = [];
    digests.forEach((digest, i) => {
      // Deleted between the two reads: not a candidate any more.
      if (sizes[i] !== null) records.push({ digest, size: Number(sizes[i]), usedAt: Number(scored[2 * i + 1]), retained: false });
    });
    return records;
  }

  async totals(): Promise<{ count: number; bytes: number; retainedBytes: number }> {
    const [count, bytes, retainedBytes] = await this.connection.call((redis) =>
      redis.hmget(this.connection.keys.counters, 'blobs', 'blobBytes', 'retainedBytes'));
    return { count: Number(count ?? 0), bytes: Number(bytes ?? 0), retainedBytes: Number(retainedBytes ?? 0) };
  }

  async *entries(): AsyncIterable<BlobRecord> {
    const { keys } = this.connection;
    let batch: Array<[string, string]> = [];
    const flush = async (): Promise<BlobRecord[]> => {
      const digests = batch.map(([digest]) => digest);
      const [lru, retained] = await this.connection.call((redis) =>
        Promise.all([redis.zmscore(keys.blobsLru, ...digests), redis.zmscore(keys.blobsRetained, ...digests)]));
      const records = batch.map(([digest, size], i) => ({ digest, size: Number(size), usedAt: Number(lru[i] ?? retained[i] ?? 0), retained: retained[i] !== null }));
      batch = [];
      return records;
    };
    for await (const pair of scanHash(this.connection, keys.blobSizes)) {
      batch.push(pair);
      if (batch.length >= SCAN_PAGE) yield* await flush();
    }
    if (batch.length > 0) yield* await flush();
  }

  #keys(): string[] {
    const { keys } = this.connection;
    return [keys.blobSizes, keys.blobsLru, keys.blobsRetained, keys.counters];
  }
}
