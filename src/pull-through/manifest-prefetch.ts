/**
 * Manifest-driven prefetch (issue 16 item 3, config `fetch.prefetch`): when an image manifest
 * is fetched from the upstream for a client, the mirror starts fetching that image's config and
 * layers it does not hold, so the client's blob requests, which come one round trip later each,
 * join downloads already running instead of starting them. zot's on-demand sync fetches a whole
 * image when its manifest is asked for, but makes the client wait for all of it; distribution,
 * Harbor and nginx caches fetch only what the client asks for, one round trip at a time.
 *
 * An index is not followed: which platform the client wants is known only when it asks for
 * that platform's manifest, which is then prefetched in turn.
 *
 * Every blob goes through the same single flight as a client's request (blob-downloads.ts), so
 * nothing is fetched twice, and through the repository the client was allowed to read: the
 * manifest came from it, and its link to each blob is recorded by the fill through it (taken
 * back if the bytes fail their digest). A prefetch nobody joins still completes and lands in the
 * cache.
 *
 * Bounded so it cannot flood an upstream's queue: per upstream, at most `fetch.maxConcurrent`
 * prefetched fetches wait to start at a time (the rest wait here, in manifest order), and at
 * most BACKLOG_LIMIT blobs wait here; past that, prefetches are skipped (clients still fetch).
 */
import { isDigest, parseDigest, type Digest } from '../domain/digest.js';
import { DOCKER_MANIFEST, mediaTypeEssence, OCI_MANIFEST } from '../domain/media-types.js';
import type { ProxiedTarget } from '../domain/target.js';
import type { CacheBudget } from '../eviction/cache-budget.js';
import type { BlobDownloads } from './blob-downloads.js';
import type { ManifestAnswer } from './registry-service.js';
import type { Upstreams } from './upstreams.js';

/** What became of one blob a manifest named: fetched by the prefetch, or why not. */
export type PrefetchOutcome = 'started' | 'running' | 'cached' | 'skipped' | 'failed';

export interface ManifestPrefetchOptions {
  downloads: Pick<BlobDownloads, 'join' | 'running'>;
  budget: Pick<CacheBudget, 'sizeOf' | 'lookup'>;
  upstreams: Upstreams;
  /** Prefetched fetches waiting for a slot, per upstream (`fetch.maxConcurrent`). */
  maxWaiting: number;
  onOutcome?: (outcome: PrefetchOutcome) => void;
}

interface Wanted {
  target: ProxiedTarget;
  digest: Digest;
}

interface Lane {
  waiting: number;
  backlog: Wanted[];
}

/** Blobs waiting here (not yet handed to the downloads) per upstream, at most. */
const BACKLOG_LIMIT = 1_000;
const IMAGE_MANIFESTS: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);

export class ManifestPrefetch {
  readonly #lanes = new Map<string, Lane>();

  constructor(private readonly options: ManifestPrefetchOptions) {}

  /** After `answer` was served for `target`: prefetches its blobs when it is an image manifest fetched just now. */
  afterManifest(target: ProxiedTarget, answer: ManifestAnswer): void {
    if (answer.origin !== 'upstream' || !IMAGE_MANIFESTS.has(mediaTypeEssence(answer.mediaType))) return;
    const lane = this.#lane(target.upstream);
    for (const digest of blobsOf(answer.bytes)) {
      if (lane.backlog.length >= BACKLOG_LIMIT) {
        this.options.onOutcome?.('skipped');
        continue;
      }
      lane.backlog.push({ target, digest });
    }
    this.#pump(target.upstream, lane);
  }

  /** Hands blobs to the downloads while fewer than maxWaiting of this upstream's prefetches wait for a slot. */
  #pump(upstream: string, lane: Lane): void {
    while (lane.waiting < this.options.maxWaiting) {
      const next = lane.backlog.shift();
      if (!next) break;
      lane.waiting += 1;
      void this.#prefetch(next).then((outcome) => {
        lane.waiting -= 1;
        this.options.onOutcome?.(outcome);
        this.#pump(upstream, lane);
      });
    }
    if (lane.waiting === 0 && lane.backlog.length === 0) this.#lanes.delete(upstream);
  }

  /** Resolves once the blob's download has started (or turned out not to be needed), never rejects. */
  async #prefetch({ target, digest }: Wanted): Promise<PrefetchOutcome> {
    const { downloads, budget, upstreams } = this.options;
    try {
      if (budget.sizeOf(digest.value) !== undefined || (await budget.lookup(digest.value)) !== undefined) return 'cached';
      if (downloads.running(digest)) return 'running';
      const upstream = upstreams.for(target);
      if (!upstream) return 'skipped';
      const { held, started, leave } = await downloads.join(target, upstream, digest, { kind: 'prefetch' });
      // Counted as wanted only until it starts: from then on it runs on its own.
      leave();
      if (held.kind === 'stored') return 'cached';
      return started ? 'started' : 'running';
    } catch {
      // The client will ask for it and see the failure itself (404, 503 ...).
      return 'failed';
    }
  }

  #lane(upstream: string): Lane {
    let lane = this.#lanes.get(upstream);
    if (!lane) {
      lane = { waiting: 0, backlog: [] };
      this.#lanes.set(upstream, lane);
    }
    return lane;
  }
}

/** The config and layers of an image manifest, in its order; foreign layers (with `urls`) left out. */
export function blobsOf(bytes: Buffer): Digest[] {
  let manifest: unknown;
  try {
    manifest = JSON.parse(bytes.toString('utf8'));
  } catch {
    return [];
  }
  if (typeof manifest !== 'object' || manifest === null) return [];
  const { config, layers } = manifest as { config?: unknown; layers?: unknown };
  const descriptors = [config, ...(Array.isArray(layers) ? layers : [])];
  const digests = new Map<string, Digest>();
  for (const descriptor of descriptors) {
    if (typeof descriptor !== 'object' || descriptor === null) continue;
    const { digest, urls } = descriptor as { digest?: unknown; urls?: unknown };
    if (typeof digest !== 'string' || !isDigest(digest) || urls !== undefined) continue;
    digests.set(digest, parseDigest(digest));
  }
  return [...digests.values()];
}
