/**
 * The internal endpoint replicas stream a download in progress through (fleet-downloads.ts):
 *
 *   GET /_mirror/fleet/blobs/<digest>   X-Mirror-Cluster-Auth: <signature> (cluster-auth.ts)
 *     200: the bytes of this replica's download of <digest> as they land, Content-Length when the
 *          upstream announced one, the last byte only after the digest check here; the response
 *          is cut if the download fails. X-Mirror-Fill-Via names the repository it comes through.
 *     401: no valid signature. 404: no download of <digest> runs here (any more).
 *          With X-Mirror-Fill-Files: 1 (a worker of this machine), X-Mirror-Fill-Writing and
 *          X-Mirror-Fill-Published name the download's file now and once published
 *          (URI-encoded), where the download writes to a local file; if its size is known,
 *          X-Mirror-Fill-Progress gives it, and the body is how far the file may be read
 *          (fill-progress.ts) instead of the bytes, which that worker reads from the file.
 *
 * With `serve --workers` a replica's address reaches any of its workers; one that does not run
 * the download relays the request to the worker of its machine that does (its lease names it).
 *
 * Mounted only when MIRROR_CLUSTER_SECRET is set, and before client authentication: replicas
 * hold the fleet's secret, not a client's password. It is outside /v2/, so no client of the
 * registry API ever reaches it by a registry path.
 */
import type { Hono } from 'hono';
import { parseDigest } from '../domain/digest.js';
import { BlobUnknownError } from '../domain/errors.js';
import { sendBlobAnswer } from '../http/send-blob-body.js';
import { sendStream } from '../http/send-stream.js';
import { CLUSTER_AUTH_HEADER, verifyClusterRequest } from './cluster-auth.js';
import { fillProgress } from './fill-progress.js';
import type { FleetBlobDownloads } from './fleet-downloads.js';
import { FILL_ANONYMOUS_HEADER, FILL_FILES_WANTED_HEADER, FILL_PROGRESS_HEADER, FILL_PUBLISHED_HEADER, FILL_VIA_HEADER, FILL_WRITING_HEADER, FLEET_BLOB_PATH, type PeerClient } from './peer-client.js';

export interface FleetRoutesOptions {
  secret: string;
  downloads: FleetBlobDownloads;
  /** For relaying to another worker of this machine. */
  peers?: PeerClient;
  /** Config `sendfile`. */
  sendfile: boolean;
}

export function mountFleetRoutes(app: Hono, { secret, downloads, peers, sendfile }: FleetRoutesOptions): void {
  app.get(`${FLEET_BLOB_PATH}:digest`, async function fleetBlob(c) {
    verifyClusterRequest(secret, c.req.header(CLUSTER_AUTH_HEADER), 'GET', new URL(c.req.url).pathname);
    const digest = parseDigest(c.req.param('digest'));
    const download = await downloads.inProgress(digest);
    const relay = !download?.growing && peers ? await downloads.relayFor(digest) : undefined;
    if (relay) {
      const relayed = await peers!.download(relay, digest, c.req.raw.signal);
      const headers = fillHeaders(digest.value, relayed);
      if (relayed.size !== undefined) headers['Content-Length'] = String(relayed.size);
      return sendStream(c, 200, headers, relayed.body);
    }
    if (!download?.growing) throw new BlobUnknownError(`no download of ${digest.value} is in progress on this replica`);
    const headers = fillHeaders(digest.value, download);
    const files = c.req.header(FILL_FILES_WANTED_HEADER) === '1' ? download.growing.files?.(digest) : undefined;
    if (files) {
      headers[FILL_WRITING_HEADER] = encodeURIComponent(files.writing);
      headers[FILL_PUBLISHED_HEADER] = encodeURIComponent(files.published);
      if (download.size !== undefined && download.size > 0) {
        headers[FILL_PROGRESS_HEADER] = String(download.size);
        headers['Content-Type'] = 'text/plain; charset=us-ascii';
        // The head now: the first record waits for the download's first bytes.
        return sendStream(c, 200, headers, fillProgress(download.growing, download.size), undefined, { headNow: true });
      }
    }
    const answer = { size: download.size, range: undefined, origin: 'joined' as const, via: download.via, body: { kind: 'growing' as const, file: download.growing }, release: () => {} };
    return sendBlobAnswer(c, answer, headers, { sendfile });
  });
}

/** What a follower needs to know of the download besides its bytes: where it comes from, and whether it was fetched without credentials. */
function fillHeaders(digest: string, download: { via: string; anonymous?: boolean }): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest, [FILL_VIA_HEADER]: download.via };
  if (download.anonymous === true) headers[FILL_ANONYMOUS_HEADER] = '1';
  return headers;
}
