/**
 * The metadata store in Redis, for replicas that share one view of tags, links, the blob index,
 * uploads, verdicts and usage. Native structures throughout (hashes, sets, sorted sets paged
 * by ZRANGEBYLEX), and no client-side read-modify-write: changes that depend on what is there
 * run as scripts, the rest in MULTI (compare distribution's registry/storage/cache/redis).
 * Keys are laid out in redis-keys.ts; connection behaviour when Redis is down in
 * redis-connection.ts.
 */
import type { MetadataStore } from '../metadata-store.js';
import { RedisBlobs } from './redis-blobs.js';
import { RedisConnection, type RedisMetadataStoreOptions } from './redis-connection.js';
import { RedisLinks, RedisManifests } from './redis-links.js';
import { RedisUploads, RedisUsage, RedisVerdicts } from './redis-sessions.js';
import { RedisCatalog, RedisTags } from './redis-tags.js';

export type { RedisMetadataStoreOptions } from './redis-connection.js';

export class RedisMetadataStore implements MetadataStore {
  readonly tags: RedisTags;
  readonly catalog: RedisCatalog;
  readonly links: RedisLinks;
  readonly manifests: RedisManifests;
  readonly blobs: RedisBlobs;
  readonly uploads: RedisUploads;
  readonly verdicts: RedisVerdicts;
  readonly usage: RedisUsage;
  readonly #connection: RedisConnection;

  private constructor(connection: RedisConnection) {
    this.#connection = connection;
    this.tags = new RedisTags(connection);
    this.catalog = new RedisCatalog(connection);
    this.links = new RedisLinks(connection);
    this.manifests = new RedisManifests(connection);
    this.blobs = new RedisBlobs(connection);
    this.uploads = new RedisUploads(connection);
    this.verdicts = new RedisVerdicts(connection);
    this.usage = new RedisUsage(connection);
  }

  /**
   * Connects; rejects with MetadataUnavailableError when Redis cannot be reached in time, unless
   * `whenUnreachable` is "reconnect" (the store then answers 503s until the client reconnects).
   */
  static async open(options: RedisMetadataStoreOptions): Promise<RedisMetadataStore> {
    const connection = await RedisConnection.open(options);
    // Usage counting starts with the first store on this prefix; later ones keep that time.
    const markUsageSince = () => connection.call((redis) => redis.hsetnx(connection.keys.counters, 'usageSince', Date.now()));
    if (!connection.connected) {
      connection.redis.once('ready', () => void markUsageSince().catch(() => {}));
      return new RedisMetadataStore(connection);
    }
    try {
      await markUsageSince();
    } catch (error) {
      await connection.close();
      throw error;
    }
    return new RedisMetadataStore(connection);
  }

  get keyPrefix(): string {
    return this.#connection.keys.prefix;
  }

  /** Rejects at once while Redis is down (no offline queue), after commandTimeoutMs if it hangs. */
  async ping(): Promise<void> {
    await this.#connection.call((redis) => redis.ping());
  }

  close(): Promise<void> {
    return this.#connection.close();
  }
}
