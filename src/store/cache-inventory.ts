/**
 * Walks the cache directory for the offline commands (verify, prune, stats): published blobs
 * come from BlobStore.list; manifests are listed here with their media-type files.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDigest, parseDigest, type Digest } from '../domain/digest.js';
import type { StorePaths } from './store-paths.js';

export interface ManifestFile {
  digest: Digest;
  size: number;
  path: string;
  /** False when the `.type` file is missing: the manifest cannot be served as stored. */
  hasType: boolean;
}

export interface ManifestListing {
  manifests: ManifestFile[];
  /** `<hex>.<uuid>.tmp` files of writes a crash interrupted. */
  leftovers: string[];
}

export async function listManifests(paths: StorePaths): Promise<ManifestListing> {
  const listing: ManifestListing = { manifests: [], leftovers: [] };
  for (const algorithm of await listDir(paths.manifestsDir)) {
    for (const fanout of await listDir(path.join(paths.manifestsDir, algorithm))) {
      const dir = path.join(paths.manifestsDir, algorithm, fanout);
      const names = await listDir(dir);
      const present = new Set(names);
      for (const name of names) {
        const file = path.join(dir, name);
        if (name.endsWith('.tmp')) listing.leftovers.push(file);
        if (!isDigest(`${algorithm}:${name}`)) continue;
        const info = await stat(file).catch(() => undefined);
        if (!info?.isFile()) continue;
        listing.manifests.push({ digest: parseDigest(`${algorithm}:${name}`), size: info.size, path: file, hasType: present.has(`${name}.type`) });
      }
    }
  }
  return listing;
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
