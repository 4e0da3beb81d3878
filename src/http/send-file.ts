/**
 * Sends a byte range of a blob file to the socket: a cached blob (the warm path, which most
 * requests take) or one still downloading. With the sendfile addon (sendfile-addon.ts) on a
 * plain TCP socket the kernel sends the pages itself (send-file-zero-copy.ts); otherwise (no
 * addon, TLS, config `sendfile: false`) a cached blob is copied through user space
 * (send-file-copy.ts) and a download is streamed (storage/growing-file.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { copyFileRange } from './send-file-copy.js';
import { plainSocketFd, publishedFile, sendFileRangeZeroCopy, type ZeroCopyBody } from './send-file-zero-copy.js';
import { sendfileAddon, sendfileAddonStatus } from './sendfile-addon.js';

export interface FileBody {
  path: string;
  start: number;
  /** Inclusive. */
  end: number;
  /** Runs once the file is no longer read, with the read error if there was one. */
  done: (error?: Error) => void;
  /** Whether sendfile(2) may be used (config `sendfile`). */
  sendfile: boolean;
}

/** The socket to send this response's body to with sendfile, if it may be: config, addon, plain TCP. */
export function zeroCopySocket(outgoing: ServerResponse, sendfile: boolean): Socket | undefined {
  // No socket yet for a pipelined response queued behind another (Node assigns it later).
  const socket = outgoing.socket;
  return sendfile && sendfileAddon && socket && plainSocketFd(socket) !== undefined ? socket : undefined;
}

/**
 * Writes bytes [start, end] (inclusive) of `file.path` to `outgoing`, whose head is already set,
 * and ends it. `file.done` runs exactly once, when the file is no longer read (finished, failed,
 * or the client went away), with the read error if there was one. An error destroys the
 * response, so the client sees it cut short.
 */
export function sendFileRange(outgoing: ServerResponse, { path, start, end, done, sendfile }: FileBody): void {
  const socket = zeroCopySocket(outgoing, sendfile);
  if (socket) sendFileRangeZeroCopy(sendfileAddon!, outgoing, socket, { file: publishedFile(path), name: path, start, end, done });
  else copyFileRange(outgoing, path, start, end, done);
}

/** A range of a blob still downloading, by sendfile to `socket` (from zeroCopySocket). */
export function sendGrowingFileRange(outgoing: ServerResponse, socket: Socket, body: ZeroCopyBody): void {
  sendFileRangeZeroCopy(sendfileAddon!, outgoing, socket, body);
}

export type BlobBodyMethod = { method: 'sendfile'; reason: null } | { method: 'copy'; reason: string };

/** How cache hits go out under this config: for the start-up log and /api/status. */
export function blobBodyMethod(config: { sendfile: boolean; tls?: unknown }): BlobBodyMethod {
  if (!config.sendfile) return { method: 'copy', reason: 'config sendfile is false' };
  if (config.tls) return { method: 'copy', reason: 'tls: every byte passes through OpenSSL' };
  if (!sendfileAddonStatus.available) return { method: 'copy', reason: `sendfile addon ${sendfileAddonStatus.reason}` };
  return { method: 'sendfile', reason: null };
}
