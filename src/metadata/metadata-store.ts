/**
 * Everything the mirror knows about content besides its bytes: tags, the repository catalog,
 * which repositories hold which content (links), manifest records (media type and what they
 * reference, for referrers and garbage collection), the blob index with recency (the LRU),
 * upload sessions, access verdicts and usage counters.
 *
 * Small interfaces composed into one store (compare distribution's BlobService/BlobStore split,
 * not zot's 50-method ImageStore). Implementations: metadata/sqlite (the embedded default, one
 * file under cache.dir), metadata/redis (shared by replicas: native hashes, sets and sorted
 * sets, never read-modify-write), metadata/memory (tests). One contract suite
 * (test/contract/metadata-store.contract.ts) runs against all of them.
 *
 * Repositories are named by `repositoryKey` (domain/target.ts): `docker.io/library/alpine` for
 * proxied content, `team/app` for hosted. Digests are canonical `algorithm:hex` strings.
 */

/** `n` and `last` as in distribution-spec "Listing Tags" and "Listing Repositories". */
export interface PageRequest {
  /** At most this many entries; undefined: all. */
  n?: number;
  /** Only entries lexically after this one. */
  last?: string;
}

export interface TagRecord {
  digest: string;
  mediaType: string;
  size: number;
  /**
   * When the upstream last confirmed this digest for the tag, or when it was pushed (ms since
   * the epoch). Tags never expire by themselves: hosted tags are kept until deleted, cached
   * ones are judged by the resolver against `tags.ttlSeconds`.
   */
  checkedAt: number;
}

export interface TagEntry {
  repository: string;
  tag: string;
  record: TagRecord;
}

export interface TagStore {
  get(repository: string, tag: string): Promise<TagRecord | undefined>;
  /** Upserts the tag and adds its repository to the catalog. */
  set(repository: string, tag: string, record: TagRecord): Promise<void>;
  /** Many tags at once, in one transaction where the backend has them (import). */
  setMany(entries: TagEntry[]): Promise<void>;
  /** True when the tag existed. */
  delete(repository: string, tag: string): Promise<boolean>;
  /** Tag names in lexical (code point) order, after `page.last`, at most `page.n`. */
  list(repository: string, page?: PageRequest): Promise<string[]>;
  /** Every tag of every repository (export --all), in no particular order. */
  entries(): AsyncIterable<TagEntry>;
  count(): Promise<{ tags: number; repositories: number }>;
}

export interface RepositoryCatalog {
  /** Adds a repository (idempotent); tags.set and links.add do it too. */
  add(repository: string): Promise<void>;
  /** Repository names in lexical order, after `page.last`, at most `page.n` (distribution-spec "Listing Repositories"). */
  list(page?: PageRequest): Promise<string[]>;
  remove(repository: string): Promise<void>;
}

/**
 * Repository <-> content. For proxied repositories a link means the upstream confirmed that the
 * repository serves the digest (a 200 for that name, or a verified fill through it); for hosted
 * ones, that the content was pushed or mounted into it.
 */
export interface LinkStore {
  add(repository: string, digest: string): Promise<void>;
  has(repository: string, digest: string): Promise<boolean>;
  /** Repositories linked to `digest`, at most `limit`. */
  repositories(digest: string, limit: number): Promise<string[]>;
  /** Every digest linked to `repository`. */
  digests(repository: string): AsyncIterable<string>;
  remove(repository: string, digest: string): Promise<void>;
  /** Removes every link to `digest` (it left the store). */
  removeDigest(digest: string): Promise<void>;
}

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  /** Digests the manifest references: config, layers, child manifests. Not the subject. */
  references: string[];
  /** OCI image-spec 1.1 `subject` digest, when the manifest has one. */
  subject?: string;
  /** `artifactType`, or for an image manifest without one its config's media type (distribution-spec "Listing Referrers"). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ManifestIndex {
  put(record: ManifestRecord): Promise<void>;
  get(digest: string): Promise<ManifestRecord | undefined>;
  delete(digest: string): Promise<void>;
  /** Manifests linked to `repository` whose subject is `subject`. */
  referrers(repository: string, subject: string): Promise<ManifestRecord[]>;
  /** Every manifest record (GC), in no particular order. */
  entries(): AsyncIterable<ManifestRecord>;
}

export interface BlobRecord {
  digest: string;
  size: number;
  /** Last use (ms since the epoch). */
  usedAt: number;
  /** Never evicted by the LRU: hosted content and cached blobs hosted manifests reference. */
  retained: boolean;
}

/**
 * The blobs a content store holds, with the recency the LRU evicts by. Manifests are not in
 * it: they live in the ManifestIndex and are never evicted.
 */
export interface BlobIndex {
  /** Upserts; a new record's usedAt is `usedAt` (default now). `retained` stays true once set unless set false. */
  put(digest: string, size: number, options?: { retained?: boolean; usedAt?: number }): Promise<void>;
  get(digest: string): Promise<BlobRecord | undefined>;
  /** Records uses, batched by the caller. Unknown digests are ignored. */
  touch(digests: string[], at: number): Promise<void>;
  setRetained(digests: string[], retained: boolean): Promise<void>;
  /** True when the record existed. */
  delete(digest: string): Promise<boolean>;
  /** Evictable (not retained) records, least recently used first, at most `limit`. */
  leastRecentlyUsed(limit: number): Promise<BlobRecord[]>;
  totals(): Promise<{ count: number; bytes: number; retainedBytes: number }>;
  entries(): AsyncIterable<BlobRecord>;
}

export interface UploadSession {
  /** The upload's UUID, as in its Location. */
  id: string;
  repository: string;
  /** The content-store writer holding the bytes (resumable). */
  writerId: string;
  /** Bytes received so far. */
  offset: number;
  startedAt: number;
  updatedAt: number;
}

export interface UploadStore {
  put(session: UploadSession): Promise<void>;
  get(id: string): Promise<UploadSession | undefined>;
  delete(id: string): Promise<void>;
  /** Sessions not updated since `before` (ms since the epoch). */
  olderThan(before: number): Promise<UploadSession[]>;
  /**
   * Takes session `id` for `holder` (one request) for `ttlMs`: true when nobody else holds it, or
   * their claim ran out (a process that died mid-request); taking it again as the same holder
   * extends it. Every process sharing the store writes a session one request at a time this way:
   * two writers at one offset would put one's bytes on disk under the other's hash.
   */
  claim(id: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Ends `holder`'s claim on `id`; a claim someone else holds stays. */
  unclaim(id: string, holder: string): Promise<void>;
}

export interface Verdict {
  /** Whether the upstream lets anonymous clients read the repository. */
  readable: boolean;
  checkedAt: number;
}

/** Access verdicts per proxied repository (pull-through/access-policy.ts). Bounded: the backend may forget the least recently set. */
export interface VerdictStore {
  get(repository: string): Promise<Verdict | undefined>;
  /** Forgotten after `ttlMs`. */
  set(repository: string, verdict: Verdict, ttlMs: number): Promise<void>;
}

export interface UsageCounts {
  /** Manifest GETs by tag that succeeded: what a client does once per image pull. */
  pulls: number;
  /** Manifest and blob GETs answered without the upstream's bytes. */
  hits: number;
  /** Manifest and blob GETs whose bytes came from the upstream. */
  misses: number;
}

export interface UsageReport {
  /** When counting started (ms since the epoch). */
  since: number;
  totals: UsageCounts;
  /** The `top` repositories by pulls, then by requests. */
  repositories: Array<{ repository: string } & UsageCounts>;
}

export interface UsageStore {
  /** Adds counts atomically (concurrent processes and replicas add up). */
  add(batch: Map<string, UsageCounts>): Promise<void>;
  report(top: number): Promise<UsageReport>;
}

export interface MetadataStore {
  readonly tags: TagStore;
  readonly catalog: RepositoryCatalog;
  readonly links: LinkStore;
  readonly manifests: ManifestIndex;
  readonly blobs: BlobIndex;
  readonly uploads: UploadStore;
  readonly verdicts: VerdictStore;
  readonly usage: UsageStore;
  /** Rejects when the backend cannot be reached (/readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function emptyUsageCounts(): UsageCounts {
  return { pulls: 0, hits: 0, misses: 0 };
}
