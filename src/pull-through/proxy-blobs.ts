/**
 * Blobs of proxied repositories: from the content store when held, else from one shared
 * upstream download (blob-downloads.ts) that clients follow as it is written. Blobs are stored
 * once per digest whatever repository or upstream they came through (the same digest is the
 * same bytes). Compare distribution's registry/proxy/proxyblobstore.go (ServeBlob, serveLocal).
 *
 * The warm path, a blob this process knows: its size from memory, a pin and a recency mark
 * (eviction/cache-budget.ts), and a file body from the store that costs no syscall.
 */
import { resolveRange, type RangeRequest } from '../domain/byte-range.js';
import type { Digest } from '../domain/digest.js';
import { AnonymousAccessRefusedError, BlobUnknownError } from '../domain/errors.js';
import type { ProxiedTarget } from '../domain/target.js';
import type { CacheBudget } from '../eviction/cache-budget.js';
import type { ContentStore } from '../storage/content-store.js';
import type { RunningDownload } from './blob-download.js';
import type { BlobDownloads } from './blob-downloads.js';
import type { UpstreamTimeAccount } from './charged-upstream.js';
import type { BlobAnswer, BlobOrigin, BlobRequestOptions, RequestOptions } from './registry-service.js';
import type { UpstreamPort } from './upstream-port.js';
import type { Upstreams } from './upstreams.js';

export interface ProxyBlobsOptions {
  content: ContentStore;
  budget: CacheBudget;
  downloads: BlobDownloads;
  upstreams: Upstreams;
}

interface Source {
  origin: BlobOrigin;
  via?: string;
  anonymous?: boolean;
}

const FROM_CACHE: Source = { origin: 'cache' };

export class ProxyBlobs {
  constructor(private readonly options: ProxyBlobsOptions) {}

  async blob(target: ProxiedTarget, digest: Digest, range?: RangeRequest, options: BlobRequestOptions = {}): Promise<BlobAnswer> {
    const known = this.options.budget.sizeOf(digest.value);
    if (known !== undefined) return this.#fromStore(target, digest, known, range, FROM_CACHE, options);
    const size = await this.options.budget.lookup(digest.value);
    if (size !== undefined) return this.#fromStore(target, digest, size, range, FROM_CACHE, options);
    return this.#fromUpstream(target, digest, range, options);
  }

  /** What blob() answers from the store on its first line, with no lookup. */
  heldInMemory(digest: Digest): boolean {
    return this.options.budget.sizeOf(digest.value) !== undefined;
  }

  /** The size without reading or pulling the blob (HEAD): held, downloading, or as the upstream says. */
  async size(target: ProxiedTarget, digest: Digest, options: RequestOptions = {}): Promise<number> {
    const held = this.options.budget.sizeOf(digest.value) ?? (await this.options.budget.lookup(digest.value));
    if (held !== undefined) return held;
    const running = this.options.downloads.running(digest);
    if (running?.size !== undefined) return running.size;
    if (running) return (await running.settled).size;
    const { size } = await this.#upstream(target, digest, options.chargeTo).headBlob(target.repository, digest.value);
    if (size === undefined) throw new BlobUnknownError(`upstream did not give the size of ${digest.value}`);
    return size;
  }

  async #fromStore(target: ProxiedTarget, digest: Digest, size: number, request: RangeRequest | undefined, source: Source, options: BlobRequestOptions): Promise<BlobAnswer> {
    const { budget, content } = this.options;
    const range = resolveRange(request, size);
    const unpin = budget.use(digest.value, size);
    const body = await content.open(digest, { knownSize: size, range, allowRedirect: true });
    if (!body) {
      // Removed behind the index's back (another process's verify, an operator).
      unpin();
      budget.forget(digest.value);
      return this.#fromUpstream(target, digest, request, options);
    }
    const release = (error?: Error) => {
      unpin();
      if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') budget.forget(digest.value);
    };
    return { size, range, ...source, body, release };
  }

  async #fromUpstream(target: ProxiedTarget, digest: Digest, request: RangeRequest | undefined, options: BlobRequestOptions): Promise<BlobAnswer> {
    const upstream = this.#upstream(target, digest, options.chargeTo);
    const port = (options.withoutCredentials && upstream.withoutCredentials) || upstream;
    try {
      return await this.#download(target, port, digest, request, options);
    } catch (error) {
      // That fetch was made without credentials for another client; this one's may be let in.
      if (error instanceof AnonymousAccessRefusedError && port === upstream) return this.#download(target, upstream, digest, request, options);
      throw error;
    }
  }

  async #download(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest, request: RangeRequest | undefined, options: BlobRequestOptions): Promise<BlobAnswer> {
    upstream.prepareFetch?.(target.repository);
    const { held, started, leave } = await this.options.downloads.join(target, upstream, digest, { signal: options.signal });
    if (held.kind === 'stored') {
      leave();
      return this.#afterFill(target, digest, request, FROM_CACHE, options);
    }
    const source: Source = { origin: started ? 'upstream' : 'joined', via: held.via, anonymous: held.anonymous === true };
    // Followed as it grows where the store allows it; a range needs the size first.
    if (!held.growing || (request && held.size === undefined)) {
      try {
        await held.settled;
      } finally {
        leave();
      }
      return this.#afterFill(target, digest, request, source, options);
    }
    return this.#following(held, request, source, leave);
  }

  /** The client follows the download as it is written, and counts as following it until it is done. */
  #following(download: RunningDownload, request: RangeRequest | undefined, source: Source, leave: () => void): BlobAnswer {
    try {
      const range = download.size === undefined ? undefined : resolveRange(request, download.size);
      return { size: download.size, range, ...source, body: { kind: 'growing', file: download.growing! }, release: leave };
    } catch (error) {
      leave();
      throw error;
    }
  }

  async #afterFill(target: ProxiedTarget, digest: Digest, request: RangeRequest | undefined, source: Source, options: BlobRequestOptions): Promise<BlobAnswer> {
    const size = await this.options.budget.lookup(digest.value);
    if (size === undefined) throw new BlobUnknownError(`blob ${digest.value} left the cache as soon as it was filled`);
    return this.#fromStore(target, digest, size, request, source, options);
  }

  #upstream(target: ProxiedTarget, digest: Digest, chargeTo: UpstreamTimeAccount | undefined) {
    return this.options.upstreams.require(target, (reason) => new BlobUnknownError(`blob ${digest.value} is not cached and ${reason}`), chargeTo);
  }
}
