/**
 * Content as a Readable, whatever kind of body the store answers with: for the commands that
 * read content themselves (export, verify, warm) rather than sending it to a client.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Digest } from '../domain/digest.js';
import type { BlobBody, ByteRange, ContentStore } from './content-store.js';

/** Large reads keep the number of syscalls and chunks low. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Bytes of `digest` (the range, or all); undefined when the store does not hold it. */
export async function readContent(store: ContentStore, digest: Digest, range?: ByteRange): Promise<Readable | undefined> {
  const body = await store.open(digest, { range });
  return body && bodyStream(body, range);
}

/** A body as a stream; a file body is read over `range` (a stream body is already limited to it). */
export function bodyStream(body: BlobBody, range?: ByteRange): Readable {
  switch (body.kind) {
    case 'file':
      return createReadStream(body.path, { start: range?.start ?? 0, end: range?.end ?? Math.max(0, body.size - 1), highWaterMark: READ_CHUNK_BYTES });
    case 'stream':
      return body.stream;
    case 'redirect':
      throw new Error(`content is only available at a redirect; open it without allowRedirect`);
  }
}
