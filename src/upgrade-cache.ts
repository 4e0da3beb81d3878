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
import { withExclusiveLock } from './storage/fs/exclusive-lock.js';
import { migrateLegacyManifests } from './storage/fs/legacy-manifests.js';
import type { ManifestStore } from './storage/manifest-store.js';

/** The lock that lets one process at a time upgrade a cache directory (in the cache directory). */
export const UPGRADE_LOCK_FILE = 'upgrade.lock';

/**
 * One process at a time (`serve --workers N` starts N on one cache; `warm` or `import` may start
 * beside them): a process that went on while another was half-way would serve without the tags
 * not imported yet, and its start-up reconcile would index manifests being moved as blobs. The
 * ones that wait find the work done, which costs them a missing directory and a missing file.
 */
export async function upgradeCache(cacheDir: string, manifests: ManifestStore, metadata: MetadataStore, log: Logger): Promise<void> {
  const onWait = () => log.info({ lock: path.join(cacheDir, UPGRADE_LOCK_FILE) }, 'waiting for another process to finish upgrading the cache');
  await withExclusiveLock(path.join(cacheDir, UPGRADE_LOCK_FILE), () => upgrade(cacheDir, manifests, metadata, log), { onWait });
}

async function upgrade(cacheDir: string, manifests: ManifestStore, metadata: MetadataStore, log: Logger): Promise<void> {
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
