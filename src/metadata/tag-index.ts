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

/**
 * Key (in the repositories store) of the list of every `upstream/repository` with a tag, so the
 * index can be listed without iterating the store (not every keyv store can be iterated).
 */
const CATALOG_KEY = '*catalog';

export interface TagEntry extends TagKey {
  record: TagRecord;
}

export class TagIndex {
  /** Serialises the read-modify-write of tag lists, so concurrent sets lose no tag. */
  private listUpdates: Promise<void> = Promise.resolve();

  constructor(private readonly tags: Keyv<TagRecord>, private readonly repositories: Keyv<string[]>) {}

  async get(key: TagKey): Promise<TagRecord | undefined> {
    return (await this.tags.get(tagKey(key))) ?? undefined;
  }

  async set(key: TagKey, record: TagRecord): Promise<void> {
    await this.tags.set(tagKey(key), record, RETENTION_MS);
    const update = this.listUpdates.then(() => this.rememberTag(key));
    this.listUpdates = update.catch(() => {});
    await update;
  }

  /** Every tag this index holds (export --all); tags recorded before the catalog existed are not listed. */
  async *list(): AsyncGenerator<TagEntry> {
    for (const name of (await this.repositories.get(CATALOG_KEY)) ?? []) {
      const slash = name.indexOf('/');
      const [upstream, repository] = [name.slice(0, slash), name.slice(slash + 1)];
      for (const tag of await this.knownTags(upstream, repository)) {
        const record = await this.get({ upstream, repository, tag });
        if (record) yield { upstream, repository, tag, record };
      }
    }
  }

  /** Tags this mirror has seen for a repository, for tags/list while the upstream is down. */
  async knownTags(upstream: string, repository: string): Promise<string[]> {
    return (await this.repositories.get(repositoryKey(upstream, repository))) ?? [];
  }

  private async rememberTag(key: TagKey): Promise<void> {
    const name = repositoryKey(key.upstream, key.repository);
    const known = await this.knownTags(key.upstream, key.repository);
    if (!known.includes(key.tag)) await this.repositories.set(name, [...known, key.tag].sort(), RETENTION_MS);
    const catalog = (await this.repositories.get(CATALOG_KEY)) ?? [];
    if (!catalog.includes(name)) await this.repositories.set(CATALOG_KEY, [...catalog, name].sort());
  }
}

/**
 * How two processes' versions of one tag list (or the catalog) combine: nothing is removed from
 * these lists, so the union loses no tag either recorded (create-keyv.ts `merge`).
 */
export function unionTagLists(mine: string[], theirs: string[]): string[] {
  return [...new Set([...mine, ...theirs])].sort();
}

function tagKey({ upstream, repository, tag }: TagKey): string {
  return `${upstream}/${repository}:${tag}`;
}

function repositoryKey(upstream: string, repository: string): string {
  return `${upstream}/${repository}`;
}
