/**
 * Content-addressed bytes: blobs and manifests alike, keyed by digest only. Which repositories
 * hold a digest, its media type and when it was last used live in the metadata store
 * (metadata/metadata-store.ts); a content store knows nothing but bytes.
 *
 * Implementations: storage/fs (the default: local disk, sendfile), storage/memory (tests),
 * storage/s3 (replicas). One contract suite (test/contract/content-store.contract.ts) runs
 * against every one of them.
 *
 * Rules every implementation keeps (compare distribution's registry/storage/blobwriter.go):
 *   - nothing is visible under a digest until a writer's commit has checked size and digest;
 *   - a failed or cancelled writer leaves nothing that looks like a blob;
 *   - committing a digest that already exists is not an error: the bytes are the same.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../domain/digest.js';

/** Bytes `start` to `end`, both inclusive (RFC 9110 section 14.1.2). */
export interface ByteRange {
  start: number;
  end: number;
}

/** How a stored blob is best sent; the HTTP layer picks the transfer (http/blob-body). */
export type BlobBody =
  /** A local file: sendfile(2), a user-space copy, or nginx X-Accel-Redirect. Ranges are applied by the sender. */
  | { kind: 'file'; size: number; path: string; /** '/'-separated path under the store's blob root (accel). */ relativePath: string }
  /** Bytes from elsewhere (S3), already limited to the requested range. */
  | { kind: 'stream'; size: number; stream: Readable }
  /** A URL the client may fetch the bytes from itself (a presigned S3 URL). */
  | { kind: 'redirect'; size: number; url: string };

export interface OpenOptions {
  range?: ByteRange;
  /** The caller can answer with a redirect (GET from a client, never HEAD or an internal read). */
  allowRedirect?: boolean;
  /**
   * The content's size as the caller already knows it (the metadata blob index): a local store
   * answers without a stat, so a warm blob GET costs no syscall before sendfile. A file that is
   * gone after all shows up as ENOENT when it is opened for sending.
   */
  knownSize?: number;
}

export interface WriterOptions {
  /**
   * Continue the writer with this id (an upload session's, possibly started by another process
   * or before a restart). What it holds is re-hashed; `written` says how much that is.
   */
  resumeId?: string;
  /**
   * A resumable writer outlives this process (upload sessions); expire it with
   * `expireWriters`. Otherwise the writer belongs to this process, and its leftovers are removed
   * only once no live process owns them (a crash, never a second process starting up).
   */
  resumable?: boolean;
  /** The size announced for what will be written, if any: lets a store pick multipart sizes. */
  sizeHint?: number;
}

export interface ContentWriter {
  /** Stable across processes for resumable writers. */
  readonly id: string;
  /** Bytes written so far; bytes `append` still holds back are not counted. */
  readonly written: number;
  /**
   * Appends bytes. The caller may reuse `chunk`'s memory once the promise settles (a fill passes
   * views of a connection's read buffer: pull-through/body-pump.ts), so a writer that keeps bytes
   * longer copies them.
   */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Takes a fill's bytes at once where the store can do that cheaply (the local disk's page
   * cache): undefined when they are taken, else a promise to await before the next bytes (the
   * disk is behind). The store may hold them back from `written` and readers for a few
   * milliseconds, to write them with the bytes that follow (storage/fs/write-gather.ts); it
   * never keeps `chunk`'s memory. Optional: a cache fill uses it to keep up with the wire
   * (pull-through/blob-download.ts), and `write` where a store has none.
   */
  append?(chunk: Uint8Array): Promise<void> | undefined;
  /**
   * Checks that what was written hashes to `expected` (and is `size` bytes, when given), then
   * publishes it durably and atomically under that digest. On a mismatch nothing is published,
   * the writer is cancelled and a DigestInvalidError (or, for `size`, a SizeInvalidError) is
   * thrown.
   */
  commit(expected: Digest, size?: number): Promise<{ digest: Digest; size: number }>;
  /**
   * Discards everything written. Idempotent: safe in a finally block after commit. Readers
   * following the writer (`growing`) fail with `reason`, when given.
   */
  cancel(reason?: Error): Promise<void>;
  /** Readers may follow the bytes while they are written (storage/growing-file.ts). */
  growing?(): GrowingFile;
  /**
   * Lets go of a resumable writer in this process (its open file) without discarding what it
   * holds: it can be resumed by id afterwards, here or in another process. Absent where a
   * writer holds nothing open.
   */
  release?(): Promise<void>;
  /**
   * Writes what was written so far through to the disk now (fdatasync, in the thread pool), so
   * that the commit's sync has little left: a large upload then flushes while it arrives, not
   * all at the end. Never needed for correctness (the commit syncs everything); absent where
   * there is nothing to flush. Never rejects.
   */
  flushSoFar?(): Promise<void>;
}

/**
 * A blob file still being written, as a reader that sends files itself sees it: how far it may
 * be read now and when to look again. The last byte of a range is readable only after the
 * commit verified the digest, so a blob that fails its check is always cut short.
 */
export interface GrowingFile {
  /** Opens the file where it is now (a commit renames it; the descriptor survives that). */
  openSync(): number;
  /**
   * Bytes that may be read from `position` of a range ending (inclusive) at `end`; 0: wait.
   * Throws when the write failed. `end` may be Infinity while the size is not known (an upstream
   * that sent no Content-Length): then the last byte written so far is held back until the
   * commit, and once committed, 0 means the end (see `finalSize`).
   */
  readable(position: number, end: number): number;
  /** Calls `listener` once, when `readable` may have changed; returns a cancel function. */
  onceChanged(listener: () => void): () => void;
  /** The size once the commit checked the content; undefined before. */
  finalSize(): number | undefined;
  /**
   * Where the file is on the local disk while it is written, and where it will be once published
   * as `digest`: another process of this machine may read it there (replicas/owner-file-follow.ts).
   * Absent where the bytes are not in a local file.
   */
  files?(digest: Digest): FillFiles;
}

export interface FillFiles {
  writing: string;
  published: string;
}

export interface StoredContent {
  digest: Digest;
  size: number;
  /**
   * When the content was last written, where the store knows it (ms since the epoch). The
   * filesystem store of earlier releases recorded each use in the file's mtime: it seeds the
   * LRU's recency when such a cache is first indexed.
   */
  modifiedAt?: number;
}

export interface ContentStore {
  /** Size of the stored content; never reads it. Undefined when absent. */
  stat(digest: Digest): Promise<StoredContent | undefined>;
  /** The content as it is best sent; undefined when absent. */
  open(digest: Digest, options?: OpenOptions): Promise<BlobBody | undefined>;
  /** Small content (manifests) read whole. Undefined when absent. */
  read(digest: Digest): Promise<Buffer | undefined>;
  writer(options?: WriterOptions): Promise<ContentWriter>;
  /** Removes the content; absent content is not an error. */
  delete(digest: Digest): Promise<void>;
  /** Every stored digest with its size (GC, inventory, verify), in no particular order. */
  list(): AsyncIterable<StoredContent>;
  /** Removes resumable writers not written to since `before` (ms since epoch); returns their ids. */
  expireWriters(before: number): Promise<string[]>;
  close(): Promise<void>;
}
