/**
 * A writer's file as its readers see it while it grows (storage/growing-file.ts streams it,
 * http/send-file-zero-copy.ts sends it with sendfile): how far it may be read now, when to look
 * again, and where the file is.
 *
 * The range's last byte is never readable before the commit has checked size and digest
 * (`verified`; the fsync and rename may still be under way): a client holding every byte of its
 * Content-Length has a complete response, whatever the socket does next, so content that fails
 * its check must be cut short one byte early at the latest.
 * Without a known size (end = Infinity) the last byte written so far is held back instead.
 */
import { openSync } from 'node:fs';
import type { GrowingFile } from '../content-store.js';
import type { FsWriter } from './fs-writer.js';

export function fsGrowingFile(writer: FsWriter): GrowingFile {
  return {
    openSync: () => openCurrent(writer),
    readable: (position, end) => readableBytes(writer, position, end),
    onceChanged: (listener) => writer.onceChanged(listener),
    finalSize: () => (writer.verified ? writer.written : undefined),
    files: (digest) => ({ writing: writer.currentPath, published: writer.publishedPath(digest) }),
  };
}

function readableBytes(writer: FsWriter, position: number, end: number): number {
  if (writer.state === 'failed') throw writer.failure ?? new Error('the write failed');
  const verified = writer.verified;
  const unknownEnd = end === Infinity;
  const limit = unknownEnd ? (verified ? writer.written : writer.written - 1) : verified ? end + 1 : end;
  const available = Math.min(writer.written, limit) - position;
  if (available <= 0 && verified && !unknownEnd) throw new Error('the content ended before the requested range');
  return Math.max(0, available);
}

/** The file wherever it is now: the commit renames it, and an open descriptor survives that. */
function openCurrent(writer: FsWriter): number {
  // A failed writer's file is being removed: never hand out what is left of it.
  if (writer.state === 'failed') throw writer.failure ?? new Error('the write failed');
  // Renamed in the thread pool a moment ago, before `currentPath` caught up: look where it went.
  return openWrittenOrPublished(writer.currentPath, writer.publishingTo);
}

/** Opens a fill's file where it is written or, gone from there (published), where it was published. */
export function openWrittenOrPublished(writing: string, published: string | undefined): number {
  try {
    return openSync(writing, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || published === undefined) throw error;
    return openSync(published, 'r');
  }
}
