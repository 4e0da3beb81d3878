/**
 * Links and manifest records in Redis. Links are two sets per pair, one per direction, added
 * and removed together in a MULTI (distribution's redis cache keeps repository membership the
 * same way: SADD/SISMEMBER on a per-repository set). Manifests are one hash (digest -> record);
 * each subject has a set of the manifests that refer to it, so the referrers of a subject in
 * a repository are one SINTER of that set with the repository's links, whichever was recorded
 * first (distribution-spec "Listing Referrers").
 */
import type { LinkStore, ManifestIndex, ManifestRecord } from '../metadata-store.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './redis-scripts.js';
import { failOnError, scanHash, SCAN_PAGE } from './redis-tags.js';

export class RedisLinks implements LinkStore {
  constructor(private readonly connection: RedisConnection) {}

  async add(repository: string, digest: string): Promise<void> {
    const { keys } = this.connection;
    await this.connection.call(async (redis) => failOnError(await redis.multi()
      .sadd(keys.linksOf(repository), digest)
      .sadd(keys.linkedTo(digest), repository)
      .zadd(keys.catalog, 0, repository)
      .exec()));
  }

  async has(repository: string, digest: string): Promise<boolean> {
    return (await this.connection.call((redis) => redis.sismember(this.connection.keys.linksOf(repository), digest))) === 1;
  }

  async repositories(digest: string, limit: number): Promise<string[]> {
    const found: string[] = [];
    if (limit <= 0) return found;
    for await (const repository of scanSet(this.connection, this.connection.keys.linkedTo(digest))) {
      found.push(repository);
      if (found.length >= limit) break;
    }
    return found;
  }

  digests(repository: string): AsyncIterable<string> {
    return scanSet(this.connection, this.connection.keys.linksOf(repository));
  }

  async remove(repository: string, digest: string): Promise<void> {
    const { keys } = this.connection;
    await this.connection.call(async (redis) => failOnError(await redis.multi()
      .srem(keys.linksOf(repository), digest)
      .srem(keys.linkedTo(digest), repository)
      .exec()));
  }

  async removeDigest(digest: string): Promise<void> {
    const { keys } = this.connection;
    await this.connection.call((redis) => runScript(redis, 'linksRemoveDigest', [keys.linkedTo(digest)], [digest, keys.linksOfPrefix]));
  }
}

export class RedisManifests implements ManifestIndex {
  constructor(private readonly connection: RedisConnection) {}

  async put(record: ManifestRecord): Promise<void> {
    const { keys } = this.connection;
    await this.connection.call((redis) =>
      runScript(redis, 'manifestPut', [keys.manifests], [record.digest, serializeManifest(record), record.subject ?? '', keys.referrersPrefix]));
  }

  async get(digest: string): Promise<ManifestRecord | undefined> {
    const json = await this.connection.call((redis) => redis.hget(this.connection.keys.manifests, digest));
    return json === null ? undefined : parseManifest(json);
  }

  async delete(digest: string): Promise<void> {
    const { keys } = this.connection;
    await this.connection.call((redis) => runScript(redis, 'manifestDelete', [keys.manifests], [digest, keys.referrersPrefix]));
  }

  async referrers(repository: string, subject: string): Promise<ManifestRecord[]> {
    const { keys } = this.connection;
    const digests = await this.connection.call((redis) => redis.sinter(keys.referrers(subject), keys.linksOf(repository)));
    if (digests.length === 0) return [];
    const records = await this.connection.call((redis) => redis.hmget(keys.manifests, ...digests));
    // A record deleted between the two calls is simply not listed.
    return records.filter((json): json is string => json !== null).map(parseManifest).filter((record) => record.subject === subject);
  }

  async *entries(): AsyncIterable<ManifestRecord> {
    for await (const [, json] of scanHash(this.connection, this.connection.keys.manifests)) yield parseManifest(json);
  }
}

/** Members of a set, each once (SSCAN may repeat one while Redis rehashes). */
async function* scanSet(connection: RedisConnection, key: string): AsyncIterable<string> {
  const seen = new Set<string>();
  let cursor = '0';
  do {
    const [next, members] = await connection.call((redis) => redis.sscan(key, cursor, 'COUNT', SCAN_PAGE));
    cursor = next;
    for (const member of members) {
      if (seen.has(member)) continue;
      seen.add(member);
      yield member;
    }
  } while (cursor !== '0');
}

/** Optional fields are left out rather than written as null (the scripts read `subject`). */
function serializeManifest(record: ManifestRecord): string {
  const stored: ManifestRecord = { digest: record.digest, mediaType: record.mediaType, size: record.size, references: [...record.references] };
  if (record.subject !== undefined) stored.subject = record.subject;
  if (record.artifactType !== undefined) stored.artifactType = record.artifactType;
  if (record.annotations !== undefined) stored.annotations = record.annotations;
  return JSON.stringify(stored);
}

function parseManifest(json: string): ManifestRecord {
  return JSON.parse(json) as ManifestRecord;
}
