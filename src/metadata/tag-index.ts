/**
 * Tag -> manifest digest, keyed by (upstream, repository, tag).
 *
 * Freshness is judged by `checkedAt`, not by keyv's TTL: keyv deletes expired entries, and a
 * stale tag must still be answerable while the upstream is down. Entries therefore get a long
 * keyv TTL only as garbage collection for tags nobody asks for any more.
 */
import type Keyv from 'keyv';

export interface TagRecord {
  digest: string;
  mediaType: string;
  size: number;
  /** When the upstream last confirmed this digest for the tag (ms since epoch). */
  checkedAt: number;
}

/** Tags unused for this long are forgotten. */
const RETENTION_MS = 180 * 24 * 60 * 60 * 1000;

export interface TagKey {
  upstream: string;
  repository: string;
  tag: string;
}

export class TagIndex {
  constructor(private readonly tags: Keyv<TagRecord>, private readonly repositories: Keyv<string[]>) {}

  async get(key: TagKey): Promise<TagRecord | undefined> {
    return (await this.tags.get(tagKey(key))) ?? undefined;
  }

  async set(key: TagKey, record: TagRecord): Promise<void> {
    await this.tags.set(tagKey(key), record, RETENTION_MS);
    await this.rememberTag(key);
  }

  /** Tags this mirror has seen for a repository, for tags/list while the upstream is down. */
  async knownTags(upstream: string, repository: string): Promise<string[]> {
    return (await this.repositories.get(repositoryKey(upstream, repository))) ?? [];
  }

  private async rememberTag(key: TagKey): Promise<void> {
    const known = await this.knownTags(key.upstream, key.repository);
    if (known.includes(key.tag)) return;
    await this.repositories.set(repositoryKey(key.upstream, key.repository), [...known, key.tag].sort(), RETENTION_MS);
  }
}

function tagKey({ upstream, repository, tag }: TagKey): string {
  return `${upstream}/${repository}:${tag}`;
}

function repositoryKey(upstream: string, repository: string): string {
  return `${upstream}/${repository}`;
}
