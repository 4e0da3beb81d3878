/**
 * Fetches a blob download in progress from the replica that owns it (its lease names the owner's
 * `cluster.advertiseUrl`), through the internal endpoint (fleet-routes.ts), signed with the
 * fleet's secret (cluster-auth.ts). The answer has the shape of an upstream blob answer, so the
 * receiving replica fills its own disk from it exactly as from an upstream: hashing the bytes
 * and checking them against the digest before anything is published (blob-download.ts).
 *
 * Only http(s) URLs are dialled, and nothing of any client's request goes with it. The body is
 * read as an upstream blob's is (upstream/blob-socket-client.ts): into the connection's own
 * reused buffer and straight into the fill. Between the workers of one machine, which share a
 * disk, the owner sends how far its file may be read instead of the bytes (fill-progress.ts).
 */
import { buildConnector } from 'undici';
import type { Digest } from '../domain/digest.js';
import { UpstreamUnavailableError } from '../domain/errors.js';
import { discardUpstreamBody, type UpstreamBlob } from '../pull-through/upstream-port.js';
import type { FillFiles } from '../storage/content-store.js';
import { BlobSocketClient, blobSocketReads, type SocketResponse } from '../upstream/blob-socket-client.js';
import { CLUSTER_AUTH_HEADER, signClusterRequest } from './cluster-auth.js';
import { parseByteCount } from './fill-progress.js';

export const FLEET_BLOB_PATH = '/_mirror/fleet/blobs/';
/** The repository the owner's download comes through (the access policy's `via`). */
export const FILL_VIA_HEADER = 'x-mirror-fill-via';
/**
 * `1` when the owner fetched it without the mirror's credentials: the upstream serves it to
 * anyone through `via`, so a follower answers its anonymous clients without an access check, as
 * the owner does (pull-through/guarded-registry.ts).
 */
export const FILL_ANONYMOUS_HEADER = 'x-mirror-fill-anonymous';
/**
 * Asked by a worker of the owner's machine (`1`): the owner names its file as it is written and
 * as it will be published, in the two headers after it, so the asking worker reads the bytes
 * there instead of writing them again (owner-file-follow.ts).
 */
export const FILL_FILES_WANTED_HEADER = 'x-mirror-fill-files';
export const FILL_WRITING_HEADER = 'x-mirror-fill-writing';
export const FILL_PUBLISHED_HEADER = 'x-mirror-fill-published';
/**
 * In the owner's answer to a worker that asked for its files, when it knows the blob's size:
 * that size, and the body is then the owner's progress (fill-progress.ts), not the bytes, which
 * the worker reads from the file.
 */
export const FILL_PROGRESS_HEADER = 'x-mirror-fill-progress';

export interface PeerTimeouts {
  connectMs: number;
  /** The owner answers once its own download has started: up to its upstream's headers timeout. */
  headersMs: number;
  /** Longest pause between two chunks (the owner's upstream may pause as long). */
  idleMs: number;
}

export interface PeerDownload extends UpstreamBlob {
  via: string;
  /** Where the owner's file is, when asked for and the owner writes to a local file. */
  files?: FillFiles;
  /** The body is the owner's progress records, not the bytes (then `files` and `size` are set). */
  progress?: boolean;
}

export class PeerClient {
  readonly #client: BlobSocketClient;

  constructor(private readonly secret: string, timeouts: PeerTimeouts) {
    this.#client = new BlobSocketClient(buildConnector({ ...blobSocketReads(), timeout: timeouts.connectMs }), timeouts);
  }

  /**
   * The owner's download of `digest`; rejects when the owner cannot stream it (gone, finished,
   * not started). `wantFiles`: only between the workers of one machine, which share its disk.
   */
  async download(ownerUrl: string, digest: Digest, signal: AbortSignal, wantFiles = false): Promise<PeerDownload> {
    const url = blobUrl(ownerUrl, digest);
    const headers: Record<string, string> = { [CLUSTER_AUTH_HEADER]: signClusterRequest(this.secret, 'GET', url.pathname) };
    if (wantFiles) headers[FILL_FILES_WANTED_HEADER] = '1';
    const response: SocketResponse = await this.#client.send({ method: 'GET', url, headers, signal }, `GET ${url.pathname}`).catch((error: unknown) => {
      throw new UpstreamUnavailableError(`replica ${url.origin} did not answer for ${digest.value}: ${(error as Error).message}`);
    });
    const length = response.headers['content-length'];
    const via = response.headers[FILL_VIA_HEADER];
    if (response.statusCode !== 200 || typeof via !== 'string') {
      discardUpstreamBody(response.body);
      throw new UpstreamUnavailableError(`replica ${url.origin} has no download of ${digest.value} to share (HTTP ${response.statusCode})`);
    }
    const writing = response.headers[FILL_WRITING_HEADER];
    const published = response.headers[FILL_PUBLISHED_HEADER];
    const files = typeof writing === 'string' && typeof published === 'string' ? { writing: decodeURIComponent(writing), published: decodeURIComponent(published) } : undefined;
    const anonymous = response.headers[FILL_ANONYMOUS_HEADER] === '1';
    const progressOf = response.headers[FILL_PROGRESS_HEADER];
    const progressSize = typeof progressOf === 'string' ? parseByteCount(progressOf) : undefined;
    if (progressOf !== undefined && (!progressSize || !files)) {
      discardUpstreamBody(response.body);
      throw new UpstreamUnavailableError(`replica ${url.origin} sent progress for ${digest.value} without a size or files`);
    }
    const size = progressSize ?? (typeof length === 'string' ? Number(length) : undefined);
    return { size, body: response.body, via, anonymous, ...(files ? { files } : {}), ...(progressSize ? { progress: true } : {}) };
  }

  async close(): Promise<void> {
    this.#client.close();
  }
}

function blobUrl(ownerUrl: string, digest: Digest): URL {
  const base = new URL(ownerUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UpstreamUnavailableError(`a lease names ${JSON.stringify(ownerUrl.slice(0, 100))}, not an http(s) URL`);
  return new URL(`${FLEET_BLOB_PATH}${digest.value}`, base.origin);
}
