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
 * A window of downloads at a time, per upstream, in manifest order (prefetchWindow): the next
 * starts when one settles. A client pulls an image's blobs in that order, a few at a time
 * (dockerd and containerd three), so the first ones it asks for should arrive first. Started all
 * at once, every download of a many-layer image shared the machine's CPU and finished at about
 * the same time: the client's first blob came no sooner than the last. With a window of 12 the
 * cold pull of a 20-layer image on the test bed took a median 292 ms against 331 ms, and
 * 0.19-0.29 s of the mirror's CPU against 0.30-0.38 s (docs/benchmarks.md, "a window of
 * prefetches"). The window leaves a quarter of `fetch.maxConcurrent` to the fetches clients
 * start themselves (a blob beyond the window, another image), and so the prefetch cannot flood
 * an upstream's queue. At most BACKLOG_LIMIT blobs wait here; past that, prefetches are skipped
 * (clients still fetch).
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
  /** Prefetched downloads running (or waiting for an upstream slot) at once, per upstream: prefetchWindow(`fetch.maxConcurrent`). */
  window: number;
  onOutcome?: (outcome: PrefetchOutcome) => void;
}

interface Wanted {
  target: ProxiedTarget;
  digest: Digest;
}

interface Lane {
  /** Prefetched downloads not settled yet. */
  running: number;
  backlog: Wanted[];
}

/** What a prefetch did, known once its download started, and when that download settled. */
interface Prefetched {
  outcome: PrefetchOutcome;
  settled: Promise<unknown>;
}

/** Blobs waiting here (not yet handed to the downloads) per upstream, at most. */
const BACKLOG_LIMIT = 1_000;
const IMAGE_MANIFESTS: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
const DONE: Promise<void> = Promise.resolve();

/** Three quarters of `fetch.maxConcurrent`, at least one: the rest is left to the clients' own fetches. */
export function prefetchWindow(maxConcurrent: number): number {
  return Math.max(1, maxConcurrent - Math.ceil(maxConcurrent / 4));
}

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

  /** Starts the next blobs while fewer than a window of this upstream's prefetched downloads run. */
  #pump(upstream: string, lane: Lane): void {
    while (lane.running < this.options.window) {
      const next = lane.backlog.shift();
      if (!next) break;
      lane.running += 1;
      void this.#prefetch(next).then(async ({ outcome, settled }) => {
        this.options.onOutcome?.(outcome);
        await settled;
        lane.running -= 1;
        this.#pump(upstream, lane);
      });
    }
    if (lane.running === 0 && lane.backlog.length === 0) this.#lanes.delete(upstream);
  }

  /** Resolves once the blob's download has started (or turned out not to be needed), never rejects; nor does `settled`. */
  async #prefetch({ target, digest }: Wanted): Promise<Prefetched> {
    const { downloads, budget, upstreams } = this.options;
    try {
      if (budget.sizeOf(digest.value) !== undefined || (await budget.lookup(digest.value)) !== undefined) return { outcome: 'cached', settled: DONE };
      // A download a client started counts in the window too: it is one more running.
      const running = downloads.running(digest);
      if (running) return { outcome: 'running', settled: running.settled.catch(() => {}) };
      const upstream = upstreams.for(target);
      if (!upstream) return { outcome: 'skipped', settled: DONE };
      const { held, started, leave } = await downloads.join(target, upstream, digest, { kind: 'prefetch' });
      // Counted as wanted only until it starts: from then on it runs on its own.
      leave();
      if (held.kind === 'stored') return { outcome: 'cached', settled: DONE };
      return { outcome: started ? 'started' : 'running', settled: held.settled.catch(() => {}) };
    } catch {
      // The client will ask for it and see the failure itself (404, 503 ...).
      return { outcome: 'failed', settled: DONE };
    }
  }

  #lane(upstream: string): Lane {
    let lane = this.#lanes.get(upstream);
    if (!lane) {
      lane = { running: 0, backlog: [] };
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
