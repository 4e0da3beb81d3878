/**
 * Sends a byte range of a cached blob file to the socket: the warm path, which most requests
 * take. With the sendfile addon (sendfile-addon.ts) on a plain TCP socket the kernel sends the
 * pages itself (send-file-zero-copy.ts). Otherwise (no addon, TLS, config `sendfile: false`)
 * every byte is read into user space and written out again, and what this file saves is
 * everything around that copy. Reads go into a small pool of
 * reusable buffers (a buffer returns to the pool once the socket has taken it, signalled by the
 * write callback), instead of a fresh allocation per chunk that the garbage collector must then
 * chase; and 256 KiB chunks stay in the CPU cache between the read and the write, which measured
 * faster than 1 MiB ones. Backpressure is honoured through 'drain'.
 */
import { close, open, read } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { plainSocketFd, sendFileRangeZeroCopy } from './send-file-zero-copy.js';
import { sendfileAddon, sendfileAddonStatus } from './sendfile-addon.js';
import type { FileBody } from './send-stream.js';

const CHUNK_BYTES = 256 * 1024;
/**
 * Buffers kept for reuse (16 MiB at most). Each response has at most one chunk in flight, so
 * this covers 64 busy connections; beyond that, extra buffers are allocated and left to the GC
 * rather than held, keeping RSS flat under a large herd.
 */
const POOL_LIMIT = 64;
const pool: Buffer[] = [];

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
}

function returnBuffer(buffer: Buffer): void {
  if (pool.length < POOL_LIMIT) pool.push(buffer);
}

/**
 * Writes bytes [start, end] (inclusive) of `file.path` to `outgoing`, whose head is already set,
 * and ends it. `file.done` runs exactly once, when the file is no longer read (finished, failed,
 * or the client went away), with the read error if there was one. An error destroys the
 * response, so the client sees it cut short.
 */
export function sendFileRange(outgoing: ServerResponse, { path, start, end, done, sendfile }: FileBody): void {
  const socket = outgoing.socket;
  if (sendfile && sendfileAddon && socket && plainSocketFd(socket) !== undefined) sendFileRangeZeroCopy(sendfileAddon, outgoing, socket, path, start, end, done);
  else copyFileRange(outgoing, path, start, end, done);
}

export type BlobBodyMethod = { method: 'sendfile'; reason: null } | { method: 'copy'; reason: string };

/** How cache hits go out under this config (some TLS-less sockets may still be copied): for the start-up log and /api/status. */
export function blobBodyMethod(config: { sendfile: boolean; tls?: unknown }): BlobBodyMethod {
  if (!config.sendfile) return { method: 'copy', reason: 'config sendfile is false' };
  if (config.tls) return { method: 'copy', reason: 'tls: every byte passes through OpenSSL' };
  if (!sendfileAddonStatus.available) return { method: 'copy', reason: `sendfile addon ${sendfileAddonStatus.reason}` };
  return { method: 'sendfile', reason: null };
}

function copyFileRange(outgoing: ServerResponse, path: string, start: number, end: number, done: (error?: Error) => void): void {
  let position = start;
  let fd: number | undefined;
  let finished = false;

  const finish = (error?: Error) => {
    if (finished) return;
    finished = true;
    outgoing.off('close', onClientGone);
    if (fd !== undefined) close(fd, () => {});
    if (error) outgoing.destroy(error);
    done(error);
  };
  const onClientGone = () => finish();

  const pump = () => {
    if (finished) return;
    if (position > end) {
      outgoing.end();
      finish();
      return;
    }
    const buffer = takeBuffer();
    const length = Math.min(CHUNK_BYTES, end - position + 1);
    read(fd!, buffer, 0, length, position, (error, bytesRead) => {
      if (finished) return returnBuffer(buffer);
      if (error || bytesRead === 0) return finish(error ?? new Error(`${path} ended before byte ${end}`));
      position += bytesRead;
      const chunk = bytesRead === CHUNK_BYTES ? buffer : buffer.subarray(0, bytesRead);
      if (outgoing.write(chunk, () => returnBuffer(buffer))) pump();
      else outgoing.once('drain', pump);
    });
  };

  outgoing.once('close', onClientGone);
  open(path, 'r', (error, descriptor) => {
    if (error) return finish(error);
    if (finished) return close(descriptor, () => {});
    fd = descriptor;
    pump();
  });
}
