/**
 * Tags and the catalog in Redis. A repository's tags are a hash (tag -> record) for O(1) gets,
 * mirrored by a sorted set whose members all score 0, so Redis orders them by bytes (code point
 * order for UTF-8) and ZRANGEBYLEX pages them in O(log n + page) (distribution-spec "Listing
 * Tags"). Tag sets (one or a batch) and deletes are scripts (redis-scripts.ts) that keep the
 * hash, the sorted set, the catalog and the counters in step.
 */
import type { PageRequest, RepositoryCatalog, TagEntry, TagRecord, TagStore } from '../metadata-store.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './redis-scripts.js';

/** Names fetched per round trip when a whole sorted set or hash is walked. */
export const SCAN_PAGE = 500;

/** A lexical page of a score-0 sorted set: after `last`, at most `n`. */
export async function lexicalPage(connection: RedisConnection, key: string, page: PageRequest = {}): Promise<string[]> {
  if (page.n === 0) return [];
  const min = page.last === undefined ? '-' : `(${page.last}`;
  return connection.call((redis) => (page.n === undefined ? redis.zrangebylex(key, min, '+') : redis.zrangebylex(key, min, '+', 'LIMIT', 0, page.n)));
}

/** Every member of a score-0 sorted set, a page at a time. */
export async function* lexicalMembers(connection: RedisConnection, key: string): AsyncIterable<string> {
  let last: string | undefined;
  for (;;) {
    const names = await lexicalPage(connection, key, { n: SCAN_PAGE, last });
    yield* names;
    if (names.length < SCAN_PAGE) return;
    last = names[names.length - 1];
  }
}

export class RedisCatalog implements RepositoryCatalog {
  constructor(private readonly connection: RedisConnection) {}

  async add(repository: string): Promise<void> {
    await this.connection.call((redis) => redis.zadd(this.connection.keys.catalog, 0, repository));
  }

  list(page?: PageRequest): Promise<string[]> {
    return lexicalPage(this.connection, this.connection.keys.catalog, page);
  }

  async remove(repository: string): Promise<void> {
    await this.connection.call((redis) => redis.zrem(this.connection.keys.catalog, repository));
  }
}

export class RedisTags implements TagStore {
  constructor(private readonly connection: RedisConnection) {}

  async get(repository: string, tag: string): Promise<TagRecord | undefined> {
    const json = await this.connection.call((redis) => redis.hget(this.connection.keys.tags(repository), tag));
    return json === null ? undefined : parseTag(json);
  }

  async set(repository: string, tag: string, record: TagRecord): Promise<void> {
    await this.setMany([{ repository, tag, record }]);
  }

  /** One script call per batch: applied whole and atomically, in one round trip. */
  async setMany(entries: TagEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const { keys } = this.connection;
    const byRepository = new Map<string, TagEntry[]>();
    for (const entry of entries) {
      const group = byRepository.get(entry.repository);
      if (group) group.push(entry);
      else byRepository.set(entry.repository, [entry]);
    }
    const scriptKeys = [keys.tagRepositories, keys.catalog, keys.counters];
    const args: Array<string | number> = [];
    for (const [repository, group] of byRepository) {
      scriptKeys.push(keys.tags(repository), keys.tagNames(repository));
      args.push(repository, group.length);
      for (const entry of group) args.push(entry.tag, serializeTag(entry.record));
    }
    await this.connection.call((redis) => runScript(redis, 'tagSetMany', scriptKeys, args));
  }

  async delete(repository: string, tag: string): Promise<boolean> {
    const { keys } = this.connection;
    const removed = await this.connection.call((redis) =>
      runScript(redis, 'tagDelete', [keys.tags(repository), keys.tagNames(repository), keys.tagRepositories, keys.counters], [tag, repository]));
    return removed === 1;
  }

  list(repository: string, page?: PageRequest): Promise<string[]> {
    return lexicalPage(this.connection, this.connection.keys.tagNames(repository), page);
  }

  /** Repositories with tags a page at a time, then each one's hash by HSCAN. */
  async *entries(): AsyncIterable<TagEntry> {
    for await (const repository of lexicalMembers(this.connection, this.connection.keys.tagRepositories)) {
      for await (const [tag, json] of scanHash(this.connection, this.connection.keys.tags(repository))) {
        yield { repository, tag, record: parseTag(json) };
      }
    }
  }

  async count(): Promise<{ tags: number; repositories: number }> {
    const { keys } = this.connection;
    const [tags, repositories] = await this.connection.call((redis) =>
      Promise.all([redis.hget(keys.counters, 'tags'), redis.zcard(keys.tagRepositories)]));
    return { tags: Number(tags ?? 0), repositories };
  }
}

/** Field/value pairs of a hash, each field once (HSCAN may repeat one while Redis rehashes). */
export async function* scanHash(connection: RedisConnection, key: string): AsyncIterable<[string, string]> {
  const seen = new Set<string>();
  let cursor = '0';
  do {
    const [next, flat] = await connection.call((redis) => redis.hscan(key, cursor, 'COUNT', SCAN_PAGE));
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i]!;
      if (seen.has(field)) continue;
      seen.add(field);
      yield [field, flat[i + 1]!];
    }
  } while (cursor !== '0');
}

/** MULTI answers each command's error in place instead of rejecting. */
export function failOnError(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (results === null) throw new Error('MULTI was discarded');
  for (const [error] of results) if (error) throw error;
  return results.map(([, value]) => value);
}

function serializeTag(record: TagRecord): string {
  return JSON.stringify({ digest: record.digest, mediaType: record.mediaType, size: record.size, checkedAt: record.checkedAt });
}

function parseTag(json: string): TagRecord {
  const { digest, mediaType, size, checkedAt } = JSON.parse(json) as TagRecord;
  return { digest, mediaType, size, checkedAt };
}
