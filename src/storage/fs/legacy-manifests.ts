/**
 * Caches written by earlier releases kept manifests apart from blobs:
 * `manifests/<alg>/<2 hex>/<hex>` with the media type in `<hex>.type`. At start-up they move into
 * the content store and the manifest index (storage/manifest-store.ts), so an upgraded cache
 * serves the same images without asking any upstream.
 *
 * Crash-safe and idempotent: a manifest's files are removed only after its bytes are published
 * and its record written, so a run that stops half-way is simply continued by the next start,
 * and a manifest moved twice is the same bytes under the same digest. A manifest without its
 * type file (a crash of the earlier release between the two writes) takes the media type its
 * JSON declares; one whose bytes do not match its name was never servable and is dropped.
 */
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { digestOf, isDigest, parseDigest } from '../../domain/digest.js';
import { mediaTypeFromManifest } from '../../domain/media-types.js';
import type { ManifestStore } from '../manifest-store.js';

export interface LegacyMigration {
  moved: number;
  /** Digests whose files were corrupt, removed. */
  dropped: string[];
}

export async function migrateLegacyManifests(legacyDir: string, manifests: ManifestStore): Promise<LegacyMigration> {
  const result: LegacyMigration = { moved: 0, dropped: [] };
  for (const algorithm of await listDir(legacyDir)) {
    for (const fanout of await listDir(path.join(legacyDir, algorithm))) {
      const dir = path.join(legacyDir, algorithm, fanout);
      for (const name of await listDir(dir)) await migrateEntry(dir, algorithm, name, manifests, result);
      await rmdir(dir).catch(() => {});
    }
    await rmdir(path.join(legacyDir, algorithm)).catch(() => {});
  }
  await rmdir(legacyDir).catch(() => {});
  return result;
}

async function migrateEntry(dir: string, algorithm: string, name: string, manifests: ManifestStore, result: LegacyMigration): Promise<void> {
  const file = path.join(dir, name);
  // Temp files of writes a crash interrupted: the manifest they were for is whole or absent.
  if (name.endsWith('.tmp')) return void (await rm(file, { force: true }));
  if (!isDigest(`${algorithm}:${name}`)) return;
  const digest = parseDigest(`${algorithm}:${name}`);
  const bytes = await readFile(file).catch(() => undefined);
  if (bytes) {
    const mediaType = (await readFile(`${file}.type`, 'utf8').catch(() => '')).trim() || mediaTypeFromManifest(bytes);
    if (mediaType && digestOf(bytes, digest.algorithm).value === digest.value) {
      await manifests.write(digest, bytes, mediaType);
      result.moved += 1;
    } else {
      result.dropped.push(digest.value);
    }
  }
  // The bytes go first: a manifest file left behind always still has its type beside it.
  await rm(file, { force: true });
  await rm(`${file}.type`, { force: true });
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return [];
    throw error;
  });
}
