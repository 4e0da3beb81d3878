/**
 * Manifests by digest, byte-exact, with their media type. Manifests are small and read on
 * every pull, so recently used ones are also kept in memory (bounded by bytes).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Digest } from '../domain/digest.js';
import type { StorePaths } from './store-paths.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export class ManifestStore {
  private readonly memory: LRUCache<string, StoredManifest>;

  constructor(private readonly paths: StorePaths, memoryBytes = 64 * 1024 * 1024) {
    this.memory = new LRUCache({ maxSize: memoryBytes, sizeCalculation: (manifest) => manifest.bytes.byteLength + 256 });
  }

  async read(digest: Digest): Promise<StoredManifest | undefined> {
    const cached = this.memory.get(digest.value);
    if (cached) return cached;
    try {
      const [bytes, mediaType] = await Promise.all([readFile(this.paths.manifest(digest)), readFile(this.paths.manifestType(digest), 'utf8')]);
      const manifest = { digest: digest.value, mediaType: mediaType.trim(), bytes };
      this.memory.set(digest.value, manifest);
      return manifest;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The caller has verified that `bytes` hash to `digest`. */
  async write(digest: Digest, bytes: Buffer, mediaType: string): Promise<StoredManifest> {
    const target = this.paths.manifest(digest);
    await mkdir(path.dirname(target), { recursive: true });
    // The type file goes first: a published manifest always has its media type next to it.
    await writeAtomically(this.paths.manifestType(digest), mediaType);
    await writeAtomically(target, bytes);
    const manifest = { digest: digest.value, mediaType, bytes };
    this.memory.set(digest.value, manifest);
    return manifest;
  }
}

async function writeAtomically(target: string, data: string | Buffer): Promise<void> {
  const temp = `${target}.${randomUUID()}.tmp`;
  await writeFile(temp, data);
  await rename(temp, target);
}
