/**
 * Reads an OCI image layout tar (ours, or one written by another tool such as skopeo's
 * `oci-archive:`) in one pass, in whatever order its entries come:
 *
 *   - big blobs stream into the content store through a writer, which hashes while writing and
 *     only publishes a blob when its digest matches its name: a corrupt entry leaves nothing;
 *   - small JSON blobs (manifests and configs, at most MAX_MANIFEST_BYTES each, a bounded total)
 *     are kept in memory and hashed, because which of them are manifests is only known from
 *     index.json, which may come last;
 *   - index.json goes to a file of its own in a temp directory (it may come before the blobs,
 *     and it holds one entry per tag: tens of megabytes for a large archive), which
 *     `close()` removes; import-archive.ts reads it entry by entry (index-json-entries.ts);
 *   - entries other than oci-layout, index.json and blobs/<alg>/<hex> are skipped, so no entry
 *     name ever becomes a path.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { digestOf, isDigest, parseDigest, type Digest } from '../domain/digest.js';
import { BadRequestError, DigestInvalidError, ManifestInvalidError, MirrorError } from '../domain/errors.js';
import { MAX_MANIFEST_BYTES } from '../domain/media-types.js';
import type { CacheBudget } from '../eviction/cache-budget.js';
import type { ContentStore } from '../storage/content-store.js';

type ArchiveEntry = tar.Extract extends AsyncIterable<infer Entry> ? Entry : never;

/** Memory kept for small JSON blobs across the whole archive; beyond it they go to disk too. */
const MEMORY_BUDGET_BYTES = 256 * 1024 * 1024;
/** About 4 million tags; beyond it an archive is more likely an attack on the disk. */
const MAX_INDEX_BYTES = 1024 * 1024 * 1024;

export interface ArchiveContents {
  /** The archive's index.json, copied to a temp file (removed by `close`). */
  index: string | undefined;
  layoutSeen: boolean;
  /** Verified small JSON blobs, by digest: the manifest candidates. */
  small: Map<string, Buffer>;
  /** Blobs committed to (or already present in) the cache. */
  stored: Set<string>;
  storedBytes: number;
  /** Of `stored`, those the cache held before (manifests of an earlier import among them). */
  present: Set<string>;
  failures: string[];
  /** Removes the temp copy of index.json. Idempotent. */
  close(): Promise<void>;
}

export interface ReadTargets {
  content: ContentStore;
  /** Imported blobs are indexed (and count against the budget) as fills are. */
  budget: Pick<CacheBudget, 'add'>;
}

export async function readOciArchive(input: Readable, targets: ReadTargets): Promise<ArchiveContents> {
  // SIGINT or SIGTERM ends the process without unwinding, and nothing sweeps the spool, which
  // is outside the cache (often a tmpfs), afterwards: removed first, then the signal does what
  // it would have done. The handlers go in before the directory exists: with an awaited
  // mkdtemp, a signal between the directory's creation and the handlers' installation left it
  // behind (seen under load).
  const spool = path.join(tmpdir(), `registry-mirror-import-${randomBytes(6).toString('hex')}`);
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(spool, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };
  const unhook = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const close = async () => {
    unhook();
    await rm(spool, { recursive: true, force: true });
  };
  try {
    // Private to this user, and never one that exists already, as mkdtemp makes it. Not through
    // close(): on EEXIST that would remove a directory this process did not make.
    mkdirSync(spool, { mode: 0o700 });
  } catch (error) {
    unhook();
    throw error;
  }
  const contents: ArchiveContents = { index: undefined, layoutSeen: false, small: new Map(), stored: new Set(), storedBytes: 0, present: new Set(), failures: [], close };
  try {
    await readTar(input, contents, targets, spool);
  } catch (error) {
    await close();
    throw error;
  }
  return contents;
}

async function readTar(input: Readable, contents: ArchiveContents, targets: ReadTargets, spool: string): Promise<void> {
  const extract = tar.extract();
  let inputError: Error | undefined;
  let tarError: Error | undefined;
  input.on('error', (error) => extract.destroy((inputError = error)));
  extract.on('error', (error: Error) => (tarError ??= error));
  input.pipe(extract);
  try {
    await readEntries(extract, contents, targets, spool);
  } catch (error) {
    if (inputError) throw inputError;
    if (error instanceof MirrorError || !isTarFault(error, tarError)) throw error;
    // The entry's error may come before the extractor's, which names the cause.
    await new Promise((resolve) => setImmediate(resolve));
    throw new BadRequestError(`the archive is not a valid tar: ${(tarError ?? (error as Error)).message}`);
  }
}

/** tar-stream's own errors (a bad header, data cut short), and the stream errors they cause. */
function isTarFault(error: unknown, tarError: Error | undefined): boolean {
  return error === tarError || (error instanceof Error && error.name === 'StreamError');
}

async function readEntries(extract: tar.Extract, contents: ArchiveContents, targets: ReadTargets, spool: string): Promise<void> {
  let memoryUsed = 0;
  for await (const entry of extract) {
    const name = entry.header.name.replace(/^(\.\/)+/, '');
    if (entry.header.type !== 'file' && entry.header.type !== 'contiguous-file') {
      entry.resume();
      continue;
    }
    if (name === 'index.json') contents.index = await spoolIndex(entry, path.join(spool, 'index.json'));
    else if (name === 'oci-layout') contents.layoutSeen = checkLayout(await readSmall(entry, 4096, name));
    else if (blobDigest(name)) memoryUsed += await readBlob(entry, blobDigest(name)!, contents, targets, MEMORY_BUDGET_BYTES - memoryUsed);
    else entry.resume();
  }
}

function blobDigest(name: string): Digest | undefined {
  const match = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(name);
  const text = match ? `${match[1]}:${match[2]}` : '';
  return isDigest(text) ? parseDigest(text) : undefined;
}

/** Returns how many bytes of memory the blob now takes (0 when it went to disk). */
async function readBlob(entry: ArchiveEntry, digest: Digest, contents: ArchiveContents, targets: ReadTargets, memoryLeft: number): Promise<number> {
  const size = entry.header.size ?? 0;
  if ((await targets.content.stat(digest))?.size === size) {
    // Idempotent: the cache has these exact bytes already (it only publishes verified blobs).
    entry.resume();
    contents.stored.add(digest.value);
    contents.present.add(digest.value);
    return 0;
  }
  const iterator = entry[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iterator.next();
  const head: Buffer[] = first.done ? [] : [first.value];
  if (size <= Math.min(MAX_MANIFEST_BYTES, memoryLeft) && (size === 0 || head[0]?.[0] === 0x7b /* '{' */)) {
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) head.push(next.value);
    const bytes = Buffer.concat(head);
    if (digestOf(bytes, digest.algorithm).value !== digest.value) {
      contents.failures.push(corrupt(digest));
      return 0;
    }
    contents.small.set(digest.value, bytes);
    return bytes.byteLength;
  }
  await ingest(digest, size, head, iterator, contents, targets);
  return 0;
}

async function ingest(digest: Digest, size: number, head: Buffer[], rest: AsyncIterator<Buffer>, contents: ArchiveContents, targets: ReadTargets): Promise<void> {
  const writer = await targets.content.writer({ sizeHint: size });
  try {
    for (const chunk of head) await writer.write(chunk);
    for (let next = await rest.next(); !next.done; next = await rest.next()) await writer.write(next.value);
    await writer.commit(digest, size);
  } catch (error) {
    await writer.cancel(error as Error);
    // Drain what is left of the entry so the next one can be read.
    for (let next = await rest.next(); !next.done; next = await rest.next());
    contents.failures.push(error instanceof MirrorError ? corrupt(digest) : `blobs/${digest.algorithm}/${digest.hex}: ${(error as Error).message}`);
    return;
  }
  await targets.budget.add(digest.value, size);
  contents.stored.add(digest.value);
  contents.storedBytes += size;
}

/** Writes a verified in-memory blob (a config, usually) into the cache; false if it was there. */
export async function storeSmallBlob(digest: Digest, bytes: Buffer, targets: ReadTargets): Promise<boolean> {
  if ((await targets.content.stat(digest)) !== undefined) return false;
  const writer = await targets.content.writer({ sizeHint: bytes.byteLength });
  try {
    await writer.write(bytes);
    await writer.commit(digest, bytes.byteLength);
  } finally {
    await writer.cancel();
  }
  await targets.budget.add(digest.value, bytes.byteLength);
  return true;
}

/** Copies index.json to `file` (a later index.json in the same archive replaces it). */
async function spoolIndex(entry: ArchiveEntry, file: string): Promise<string> {
  if ((entry.header.size ?? 0) > MAX_INDEX_BYTES) throw new ManifestInvalidError(`archive entry index.json is larger than ${MAX_INDEX_BYTES} bytes`);
  await pipeline(entry, createWriteStream(file));
  return file;
}

async function readSmall(entry: ArchiveEntry, limit: number, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of entry) {
    total += (chunk as Buffer).byteLength;
    if (total > limit) throw new ManifestInvalidError(`archive entry ${name} is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function checkLayout(bytes: Buffer): boolean {
  let layout: unknown;
  try {
    layout = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ManifestInvalidError('the archive\'s oci-layout file is not JSON');
  }
  const version = layout !== null && typeof layout === 'object' ? (layout as { imageLayoutVersion?: unknown }).imageLayoutVersion : undefined;
  if (version !== '1.0.0') throw new ManifestInvalidError(`unsupported OCI image layout version ${JSON.stringify(version)}`);
  return true;
}

function corrupt(digest: Digest): string {
  return new DigestInvalidError(`archive entry blobs/${digest.algorithm}/${digest.hex} is corrupt: its bytes do not hash to ${digest.value}; nothing was stored for it`).message;
}
