/**
 * Which repositories each digest came through, on disk beside the cache:
 * `sources/sha256/ab/<hex>` holds a JSON array of `<upstream>/<repository>` names.
 *
 * The access policy (pull-through/access-policy.ts) serves content cached through a private
 * repository to anonymous clients only under a repository it was seen in. Keeping that record
 * on disk means a restart, or a `warm` run in another process, does not turn every cached blob
 * into an upstream check. A record outlives an eviction on purpose: "this digest was in that
 * repository" stays true, and the files are tiny.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Digest } from '../domain/digest.js';
import type { StorePaths } from './store-paths.js';

export class ContentSources {
  constructor(private readonly paths: StorePaths) {}

  async read(digest: Digest): Promise<string[]> {
    try {
      const parsed: unknown = JSON.parse(await readFile(this.paths.sources(digest), 'utf8'));
      return Array.isArray(parsed) ? parsed.filter((entry): entry is string => typeof entry === 'string') : [];
    } catch (error) {
      // Missing, or torn by a crash before the rename: either way nothing is known.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof SyntaxError) return [];
      throw error;
    }
  }

  /** Writes the whole list (the caller merged it); temp + rename, so readers never see half. */
  async write(digest: Digest, repositories: string[]): Promise<void> {
    const target = this.paths.sources(digest);
    await mkdir(path.dirname(target), { recursive: true });
    const temp = `${target}.${randomUUID()}.tmp`;
    await writeFile(temp, JSON.stringify(repositories));
    await rename(temp, target);
  }
}
