/**
 * Every Redis key the metadata store uses, under one prefix (`metadataKeyPrefix`), so several
 * mirrors can share one Redis and an operator can find (or drop) one mirror's keys by pattern.
 *
 *   <p>catalog                    zset, score 0: repository names, paged with ZRANGEBYLEX
 *   <p>tags:<repository>          hash: tag -> JSON TagRecord
 *   <p>tagnames:<repository>      zset, score 0: the same tags, for lexical pages
 *   <p>tagrepos                   zset, score 0: repositories holding at least one tag
 *   <p>counters                   hash: tags, blobs, blobBytes, retainedBytes, pulls, hits, misses, usageSince
 *   <p>links:repo:<repository>    set of digests linked to the repository
 *   <p>links:digest:<digest>      set of repositories linked to the digest
 *   <p>manifests                  hash: digest -> JSON ManifestRecord
 *   <p>referrers:<subject>        set of manifest digests whose subject is <subject>
 *   <p>blobs:size                 hash: digest -> size (the blob index's membership)
 *   <p>blobs:lru                  zset: digest scored by usedAt, blobs that are not retained
 *   <p>blobs:retained             zset: digest scored by usedAt, retained blobs
 *   <p>upload:<id>                hash: an upload session
 *   <p>upload-claim:<id>          string: the holder writing the session now, with PX expiry
 *   <p>uploads                    zset: upload ids scored by updatedAt
 *   <p>verdict:<repository>       string: JSON Verdict, with PX expiry
 *   <p>usage:pulls|hits|misses    hash: repository -> count
 */
export class RedisKeys {
  readonly catalog: string;
  readonly tagRepositories: string;
  readonly counters: string;
  readonly manifests: string;
  readonly blobSizes: string;
  readonly blobsLru: string;
  readonly blobsRetained: string;
  readonly uploads: string;
  readonly usagePulls: string;
  readonly usageHits: string;
  readonly usageMisses: string;
  /** Prefixes the Lua scripts complete with a name they read from Redis. */
  readonly linksOfPrefix: string;
  readonly referrersPrefix: string;

  constructor(readonly prefix: string) {
    this.catalog = `${prefix}catalog`;
    this.tagRepositories = `${prefix}tagrepos`;
    this.counters = `${prefix}counters`;
    this.manifests = `${prefix}manifests`;
    this.blobSizes = `${prefix}blobs:size`;
    this.blobsLru = `${prefix}blobs:lru`;
    this.blobsRetained = `${prefix}blobs:retained`;
    this.uploads = `${prefix}uploads`;
    this.usagePulls = `${prefix}usage:pulls`;
    this.usageHits = `${prefix}usage:hits`;
    this.usageMisses = `${prefix}usage:misses`;
    this.linksOfPrefix = `${prefix}links:repo:`;
    this.referrersPrefix = `${prefix}referrers:`;
  }

  tags(repository: string): string {
    return `${this.prefix}tags:${repository}`;
  }

  tagNames(repository: string): string {
    return `${this.prefix}tagnames:${repository}`;
  }

  linksOf(repository: string): string {
    return `${this.linksOfPrefix}${repository}`;
  }

  linkedTo(digest: string): string {
    return `${this.prefix}links:digest:${digest}`;
  }

  referrers(subject: string): string {
    return `${this.referrersPrefix}${subject}`;
  }

  upload(id: string): string {
    return `${this.prefix}upload:${id}`;
  }

  uploadClaim(id: string): string {
    return `${this.prefix}upload-claim:${id}`;
  }

  verdict(repository: string): string {
    return `${this.prefix}verdict:${repository}`;
  }
}
