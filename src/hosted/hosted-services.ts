/**
 * Everything hosted repositories need, built from the config over the shared stores (compose.ts
 * calls it): the read service, uploads, mounts, pushes and deletions, the access policy, the
 * catalog's visibility rule, notifications and the online housekeeping.
 */
import type { Logger } from 'pino';
import type { MirrorConfig } from '../config/mirror-config.js';
import { parseDigest } from '../domain/digest.js';
import type { ProxiedTarget, RepositoryTarget } from '../domain/target.js';
import type { RegistryService } from '../pull-through/registry-service.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { allowed, parseAccessPolicy, type AccessPolicy } from './access-rules.js';
import { BlobPushes } from './blob-pushes.js';
import type { CatalogListingOptions } from './catalog-listing.js';
import { garbageCollect, type GarbageCollectReport } from './garbage-collect.js';
import { HostedContent, type HostedStores } from './hosted-content.js';
import { HostedMaintenance } from './hosted-maintenance.js';
import { HostedRegistry } from './hosted-registry.js';
import { ManifestPushes } from './manifest-pushes.js';
import { MountSources } from './mount-sources.js';
import { parseNotificationEndpoints } from './notification-config.js';
import { Notifier } from './notifications.js';
import type { PieceSize } from './upload-body.js';
import { UploadSessions } from './upload-sessions.js';

export interface HostedServices {
  registry: HostedRegistry;
  blobs: BlobPushes;
  manifests: ManifestPushes;
  uploads: UploadSessions;
  access: AccessPolicy;
  catalog: CatalogListingOptions;
  notifier: Notifier;
  maintenance: HostedMaintenance;
  /** One garbage collection now (the `gc` command runs its own; this is the server's). */
  collect(options?: { dryRun?: boolean }): Promise<GarbageCollectReport>;
  close(): Promise<void>;
}

export interface HostedServicesOptions {
  config: MirrorConfig;
  stores: HostedStores;
  /** How upload bodies are written to this content store (upload-body.ts). */
  uploadPieces: PieceSize;
  router: UpstreamRouter;
  /** The pull-through service behind the access policy, when there is one (anonymous clients). */
  guarded?: RegistryService<ProxiedTarget>;
  /** Upstreams the mirror has credentials for: their repositories stay out of anonymous catalogs. */
  credentialedUpstreams: ReadonlySet<string>;
  log: Logger;
}

export function createHostedServices({ config, stores, uploadPieces, router, guarded, credentialedUpstreams, log }: HostedServicesOptions): HostedServices {
  const access = parseAccessPolicy(config);
  const hosted = new HostedContent(stores);
  const uploads = new UploadSessions({ content: stores.content, uploads: stores.metadata.uploads, expiryMs: config.hosted.uploadExpirySeconds * 1000, pieces: uploadPieces });
  const notifier = new Notifier(parseNotificationEndpoints(config.notifications?.endpoints), { source: { addr: `${config.listen.host}:${config.listen.port}` }, log });
  const mayPull = (user: string | undefined, target: RepositoryTarget) => allowed(user, target, 'pull', access);
  const mounts = new MountSources({ route: (name) => router.target(name, undefined), mayPull, hosted, ...(guarded ? { guarded } : {}) });
  const collect = (options: { dryRun?: boolean } = {}) => garbageCollect({
    metadata: stores.metadata, content: stores.content, graceMs: config.hosted.gc.graceSeconds * 1000, dryRun: options.dryRun === true,
    isHosted: (key) => router.targetOfKey(key).kind === 'hosted',
    expireUploads: (now) => uploads.expire(now),
    onDeleted: (digest) => {
      stores.budget.forget(digest);
      stores.manifests.forget(parseDigest(digest));
    },
  }).finally(() => stores.budget.refresh());
  const maintenance = new HostedMaintenance({
    collect, expireUploads: () => uploads.expire(), gcIntervalMs: config.hosted.gc.intervalSeconds * 1000, uploadExpiryMs: config.hosted.uploadExpirySeconds * 1000, log,
  });
  const catalog: CatalogListingOptions = {
    catalog: stores.metadata.catalog,
    targetOf: (key) => router.targetOfKey(key),
    // Anonymous clients are not shown repositories of upstreams the mirror holds credentials for.
    visible: (user, target) => mayPull(user, target) && !(user === undefined && target.kind === 'proxy' && guarded !== undefined && credentialedUpstreams.has(target.upstream)),
  };
  return {
    registry: new HostedRegistry(hosted),
    blobs: new BlobPushes({ hosted, uploads, mounts, events: notifier }),
    manifests: new ManifestPushes(hosted, notifier),
    uploads, access, catalog, notifier, maintenance, collect,
    async close() {
      await maintenance.close();
      await uploads.close();
      await notifier.close(2_000);
    },
  };
}
