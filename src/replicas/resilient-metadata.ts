/**
 * The shared metadata store as replicas use it while Redis may be away (issue 15 item 5: "Redis
 * down -> replicas keep serving what their local tier and S3 hold (stale tags)"). A decorator
 * over the Redis store for the serving path only:
 *
 *   tags       reads fall back to an in-process cache of the records this process read or wrote
 *              recently (judged by their checkedAt like any record, so a tag past its TTL is
 *              revalidated or served stale as usual); writes update that cache;
 *   manifests  the same for manifest records (their bytes are in the content store);
 *   blobs      a lookup answers "not indexed", so the caller looks in the content store itself
 *              (the local tier, then S3); index writes are dropped;
 *   links      additions are dropped (the access policy then checks again later).
 *
 * Dropped writes cost at most a repeated upstream check later, never a wrong answer. Everything
 * else (uploads, verdicts, usage, catalog, listings) passes through and fails with 503 as before.
 * While Redis is away only one call a second tries it (a hung Redis would otherwise cost each
 * request a command timeout); the outage is logged once, and the recovery once.
 */
import { LRUCache } from 'lru-cache';
import { OutageNotice, type CoordinationLog } from '../coordination/outage-notice.js';
import { MetadataUnavailableError } from '../metadata/metadata-errors.js';
import type { BlobIndex, LinkStore, ManifestIndex, ManifestRecord, MetadataStore, TagRecord, TagStore } from '../metadata/metadata-store.js';

const RECENT_TAGS = 10_000;
const RECENT_MANIFESTS = 10_000;

export class ResilientMetadataStore implements MetadataStore {
  readonly tags: TagStore;
  readonly links: LinkStore;
  readonly manifests: ManifestIndex;
  readonly blobs: BlobIndex;
  readonly #outage: OutageNotice;

  constructor(private readonly inner: MetadataStore, log?: CoordinationLog) {
    this.#outage = new OutageNotice('metadata store', 'serving what the local disk and S3 hold, with the tags and manifests seen recently', log);
    const guard = <T>(work: () => Promise<T>, fallback: () => T) => this.#guard(work, fallback);
    this.tags = resilientTags(inner.tags, guard);
    this.manifests = resilientManifests(inner.manifests, guard);
    this.blobs = {
      ...bind(inner.blobs),
      get: (digest) => guard(() => inner.blobs.get(digest), () => undefined),
      put: (digest, size, options) => guard(() => inner.blobs.put(digest, size, options), () => undefined),
      touch: (digests, at) => guard(() => inner.blobs.touch(digests, at), () => undefined),
      delete: (digest) => guard(() => inner.blobs.delete(digest), () => false),
    };
    this.links = { ...bind(inner.links), add: (repository, digest) => guard(() => inner.links.add(repository, digest), () => undefined) };
  }

  get catalog() {
    return this.inner.catalog;
  }

  get uploads() {
    return this.inner.uploads;
  }

  get verdicts() {
    return this.inner.verdicts;
  }

  get usage() {
    return this.inner.usage;
  }

  /** True while Redis is known to be unreachable. */
  get degraded(): boolean {
    return this.#outage.down;
  }

  /** Rejects while Redis is away; what it finds also ends or begins the outage (/readyz and the store agree). */
  async ping(): Promise<void> {
    try {
      await this.inner.ping();
      this.#outage.noticeUp();
    } catch (error) {
      if (error instanceof MetadataUnavailableError) this.#outage.noticeDown(error);
      throw error;
    }
  }

  /** Pings Redis once, so an outage that began before this process started is logged and known at once. */
  async checkReachable(): Promise<void> {
    await this.ping().catch(() => {});
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async #guard<T>(work: () => Promise<T>, fallback: () => T): Promise<T> {
    if (!this.#outage.shouldTryRedis()) return fallback();
    try {
      const result = await work();
      this.#outage.noticeUp();
      return result;
    } catch (error) {
      if (!(error instanceof MetadataUnavailableError)) throw error;
      this.#outage.noticeDown(error);
      return fallback();
    }
  }
}

type Guard = <T>(work: () => Promise<T>, fallback: () => T) => Promise<T>;

function resilientTags(inner: TagStore, guard: Guard): TagStore {
  const recent = new LRUCache<string, TagRecord>({ max: RECENT_TAGS });
  const key = (repository: string, tag: string) => `${repository}:${tag}`;
  return {
    ...bind(inner),
    async get(repository, tag) {
      const record = await guard(() => inner.get(repository, tag), () => recent.get(key(repository, tag)));
      if (record) recent.set(key(repository, tag), record);
      return record;
    },
    async set(repository, tag, record) {
      recent.set(key(repository, tag), record);
      await guard(() => inner.set(repository, tag, record), () => undefined);
    },
  };
}

function resilientManifests(inner: ManifestIndex, guard: Guard): ManifestIndex {
  const recent = new LRUCache<string, ManifestRecord>({ max: RECENT_MANIFESTS });
  return {
    ...bind(inner),
    async get(digest) {
      const record = await guard(() => inner.get(digest), () => recent.get(digest));
      if (record) recent.set(digest, record);
      return record;
    },
    async put(record) {
      recent.set(record.digest, record);
      await guard(() => inner.put(record), () => undefined);
    },
  };
}

/** The object's methods bound to it, so a spread copy can be partly overridden. */
function bind<T extends object>(target: T): T {
  const methods: Record<string, unknown> = {};
  let proto: object | null = target;
  while (proto && proto !== Object.prototype) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const value = (target as Record<string, unknown>)[name];
      if (name !== 'constructor' && typeof value === 'function' && !(name in methods)) methods[name] = value.bind(target);
    }
    proto = Object.getPrototypeOf(proto);
  }
  return methods as T;
}
