/**
 * Brings a cache written by an earlier release up to this one, at start-up, before anything is
 * served: its manifests move into the content store (storage/fs/legacy-manifests.ts), its JSON
 * metadata into the metadata store (metadata/migrate-json-metadata.ts). Both are idempotent and
 * crash-safe, and cheap once done (a missing directory, a missing file).
 *
 * The earlier release's content sources (`sources/`) are set aside, not imported: it recorded a
 * repository as a source when a fetch *started*, before the upstream answered, so a record may
 * name a repository that answered 404 (issue 12 item 2). Imported as links they would serve
 * private content cached later to anonymous clients. Without them, content already cached costs
 * one anonymous upstream check per digest on its first anonymous request, and only where the
 * access policy applies (upstream credentials, no client auth).
 */
import { rename } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { migrateJsonMetadata } from './metadata/migrate-json-metadata.js';
import type { MetadataStore } from './metadata/metadata-store.js';
import { migrateLegacyManifests } from './storage/fs/legacy-manifests.js';
import type { ManifestStore } from './storage/manifest-store.js';

export async function upgradeCache(cacheDir: string, manifests: ManifestStore, metadata: MetadataStore, log: Logger): Promise<void> {
  const moved = await migrateLegacyManifests(path.join(cacheDir, 'manifests'), manifests);
  if (moved.moved > 0 || moved.dropped.length > 0) log.info({ moved: moved.moved, dropped: moved.dropped }, 'moved the manifests of an earlier release into the content store');
  const untrusted = await setAside(path.join(cacheDir, 'sources'));
  if (untrusted) log.info({ path: untrusted }, 'set aside the content sources of an earlier release: they may name repositories that never served the content');
  const report = await migrateJsonMetadata(cacheDir, metadata);
  if (report.migrated.length > 0 || report.unreadable.length > 0) log.info({ ...report }, 'imported the metadata of an earlier release');
}

async function setAside(dir: string): Promise<string | undefined> {
  const to = `${dir}.untrusted-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    await rename(dir, to);
    return to;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
