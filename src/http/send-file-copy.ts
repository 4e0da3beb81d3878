/**
 * Copies a byte range of a cached blob file to the socket through user space, where sendfile
 * cannot be used (send-file.ts): every byte is read and written out again, and what this file
 * saves is everything around that copy. Reads go into a small pool of reusable buffers (a buffer
 * returns to the pool once the socket has taken it, signalled by the write callback), instead of
 * a fresh allocation per chunk that the garbage collector must then chase; and 256 KiB chunks
 * stay in the CPU cache between the read and the write, which measured faster than 1 MiB ones.
 * Backpressure is honoured through 'drain'.
 */
import { close, open, read } from 'node:fs';
import type { ServerResponse } from 'node:http';

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

/** sendFileRange's copy path (same contract). */
export function copyFileRange(outgoing: ServerResponse, path: string, start: number, end: number, done: (error?: Error) => void): void {
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
