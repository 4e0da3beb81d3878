/**
 * Sends a byte range of a cached blob file to the socket: the warm path, which most requests
 * take. With the sendfile addon (sendfile-addon.ts) on a plain TCP socket the kernel sends the
 * pages itself (send-file-zero-copy.ts); otherwise (no addon, TLS, config `sendfile: false`)
 * the bytes are copied through user space (send-file-copy.ts).
 */
import type { ServerResponse } from 'node:http';
import { copyFileRange } from './send-file-copy.js';
import { plainSocketFd, sendFileRangeZeroCopy } from './send-file-zero-copy.js';
import { sendfileAddon, sendfileAddonStatus } from './sendfile-addon.js';
import type { FileBody } from './send-stream.js';

/**
 * Writes bytes [start, end] (inclusive) of `file.path` to `outgoing`, whose head is already set,
 * and ends it. `file.done` runs exactly once, when the file is no longer read (finished, failed,
 * or the client went away), with the read error if there was one. An error destroys the
 * response, so the client sees it cut short.
 */
export function sendFileRange(outgoing: ServerResponse, { path, start, end, done, sendfile }: FileBody): void {
  // No socket yet for a pipelined response queued behind another (Node assigns it later): copied.
  const socket = outgoing.socket;
  if (sendfile && sendfileAddon && socket && plainSocketFd(socket) !== undefined) sendFileRangeZeroCopy(sendfileAddon, outgoing, socket, path, start, end, done);
  else copyFileRange(outgoing, path, start, end, done);
}

export type BlobBodyMethod = { method: 'sendfile'; reason: null } | { method: 'copy'; reason: string };

/** How cache hits go out under this config: for the start-up log and /api/status. */
export function blobBodyMethod(config: { sendfile: boolean; tls?: unknown }): BlobBodyMethod {
  if (!config.sendfile) return { method: 'copy', reason: 'config sendfile is false' };
  if (config.tls) return { method: 'copy', reason: 'tls: every byte passes through OpenSSL' };
  if (!sendfileAddonStatus.available) return { method: 'copy', reason: `sendfile addon ${sendfileAddonStatus.reason}` };
  return { method: 'sendfile', reason: null };
}
