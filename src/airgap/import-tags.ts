/**
 * The tags an import restores, written in batches: one `tags.setMany` (one transaction in SQLite,
 * one pipeline in Redis) per TAG_BATCH tags, so 200,000 tags are 200 writes rather than 200,000,
 * and no write holds the database for long while a server on the same cache answers pulls.
 *
 * A tag the cache already has, pointing to other content, is re-pointed only with `retag`
 * (`registry-mirror import --retag`); without it the image's manifests and blobs are stored and
 * the tag is left as it was, reported as the image's error. The same goes for an archive that
 * names one tag twice with different content.
 *
 * The repository a ref.name names is linked to every manifest and blob of its image, as a fill
 * through that repository links what it fetched (whether or not the tag is then re-pointed):
 * under access rules, content linked to no repository is served by digest under any proxied
 * name (content-grants.ts), and an imported private image would be readable so by a user who
 * may not pull its repository.
 */
import { NameUnknownError, TagInvalidError } from '../domain/errors.js';
import { repositoryKey } from '../domain/target.js';
import type { LinkStore, TagEntry, TagStore } from '../metadata/metadata-store.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { formatImage, parseImageReference, resolveImage } from './image-reference.js';

/** Tags per transaction: large enough to amortise a commit, small enough to hold the lock briefly. */
export const TAG_BATCH = 1_000;

export interface TagTargets {
  metadata: { tags: Pick<TagStore, 'get' | 'setMany'>; links: Pick<LinkStore, 'add'> };
  router: UpstreamRouter;
}

export interface TagBatchOptions {
  retag: boolean;
  warn(text: string): void;
}

export class TagBatch {
  #pending: TagEntry[] = [];
  /** Digests of the pending batch by `repository\ntag`, for tags an archive names twice. */
  #pendingDigests = new Map<string, string>();
  /** `repository\nimage digest` pairs linked already: an archive names one image under many tags. */
  readonly #linked = new Set<string>();
  #written = 0;

  constructor(private readonly targets: TagTargets, private readonly options: TagBatchOptions) {}

  /**
   * Links the repository `refName` names to `top`'s contents and queues its tag for `top`;
   * returns its full reference, or undefined when it names no tag.
   */
  async add(refName: string, top: { digest: string; mediaType: string; size: number; contents: readonly string[] }): Promise<string | undefined> {
    // A bare tag (`latest`, as some tools write it) names no repository: nothing to key it under.
    if (!/[/:@]/.test(refName)) {
      this.options.warn(`ref.name ${JSON.stringify(refName)} names no repository; its manifest is stored by digest only`);
      return undefined;
    }
    let image;
    try {
      image = resolveImage(parseImageReference(refName), this.targets.router);
    } catch (error) {
      if (!(error instanceof NameUnknownError)) throw error;
      this.options.warn(`${refName}: ${error.message}; its manifests and blobs are stored, its tag is not`);
      return undefined;
    }
    const repository = repositoryKey(image);
    await this.#link(repository, top);
    if (image.tag === undefined) return undefined;
    const shown = formatImage({ ...image, digest: undefined });
    await this.#checkRepoint(repository, image.tag, top.digest, shown);
    this.#pending.push({ repository, tag: image.tag, record: { digest: top.digest, mediaType: top.mediaType, size: top.size, checkedAt: Date.now() } });
    this.#pendingDigests.set(`${repository}\n${image.tag}`, top.digest);
    if (this.#pending.length >= TAG_BATCH) await this.#write();
    return shown;
  }

  /** Writes what is pending; returns how many tags were written in all. */
  async flush(): Promise<number> {
    await this.#write();
    return this.#written;
  }

  async #link(repository: string, top: { digest: string; contents: readonly string[] }): Promise<void> {
    const pair = `${repository}\n${top.digest}`;
    if (this.#linked.has(pair)) return;
    for (const digest of top.contents) await this.targets.metadata.links.add(repository, digest);
    this.#linked.add(pair);
  }

  async #checkRepoint(repository: string, tag: string, digest: string, shown: string): Promise<void> {
    if (this.options.retag) return;
    const current = this.#pendingDigests.get(`${repository}\n${tag}`) ?? (await this.targets.metadata.tags.get(repository, tag))?.digest;
    if (current === undefined || current === digest) return;
    throw new TagInvalidError(`${shown} points to ${current} in the cache, the archive has ${digest}: tag not re-pointed (import --retag re-points tags)`);
  }

  async #write(): Promise<void> {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingDigests = new Map();
    await this.targets.metadata.tags.setMany(batch);
    this.#written += batch.length;
  }
}
