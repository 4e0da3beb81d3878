/**
 * The rules every reader of a blob still downloading follows (src/store/growing-blob.ts): what
 * is written may be read, the range's last byte only after the commit checked the digest, a
 * failed download throws its failure, and the file is found again after the commit's rename.
 */
import { closeSync, readSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/domain/digest.js';
import { GrowingBlob } from '../../src/store/growing-blob.js';
import { BlobIngest } from '../../src/store/ingest-blob.js';
import { StorePaths } from '../../src/store/store-paths.js';
import { sha256 } from '../helpers/http.js';
import { seededBytes } from '../helpers/test-images.js';

describe('GrowingBlob', () => {
  const bytes = seededBytes(10_000, 'growing');
  const digest = parseDigest(sha256(bytes));
  let root: string;
  let paths: StorePaths;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'growing-'));
    paths = new StorePaths(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lets what is written be read, and the last byte of the range only after the digest check', async () => {
    const ingest = await BlobIngest.start(paths, digest, bytes.length);
    const blob = new GrowingBlob(ingest);
    expect(blob.readable(0, 9_999)).toBe(0);
    await ingest.write(bytes.subarray(0, 4_000));
    expect(blob.readable(0, 9_999)).toBe(4_000);
    expect(blob.readable(1_000, 1_999)).toBe(999); // the range's own last byte waits too
    expect(blob.readable(4_000, 9_999)).toBe(0);
    await ingest.write(bytes.subarray(4_000));
    expect(blob.readable(4_000, 9_999)).toBe(5_999);
    await ingest.commit();
    expect(blob.readable(4_000, 9_999)).toBe(6_000);
    expect(blob.readable(1_000, 1_999)).toBe(1_000);
  });

  it('wakes a waiting reader at progress and at the end, once per call, and can be cancelled', async () => {
    const ingest = await BlobIngest.start(paths, digest, bytes.length);
    const blob = new GrowingBlob(ingest);
    let wakes = 0;
    blob.onceChanged(() => wakes++);
    const cancel = blob.onceChanged(() => (wakes += 100));
    cancel();
    await ingest.write(bytes.subarray(0, 10));
    await ingest.write(bytes.subarray(10, 20));
    expect(wakes).toBe(1);
    blob.onceChanged(() => wakes++);
    await ingest.fail(new Error('upstream went away'));
    expect(wakes).toBe(2);
    expect(ingest.listenerCount('progress') + ingest.listenerCount('settled')).toBe(0);
  });

  it('throws the failure of a failed download, also to a reader that has everything but the last byte', async () => {
    const ingest = await BlobIngest.start(paths, digest, bytes.length);
    const blob = new GrowingBlob(ingest);
    await ingest.write(Buffer.from(bytes).fill(0, 0, 1)); // corrupt first byte: the digest check fails
    await expect(ingest.commit()).rejects.toThrow(/hash to/);
    expect(() => blob.readable(0, 9_999)).toThrow(/hash to/);
    expect(() => blob.openSync()).toThrow(/hash to/);
  });

  it('opens the file before and after the commit renames it, and the descriptor reads the same bytes', async () => {
    const ingest = await BlobIngest.start(paths, digest, bytes.length);
    const blob = new GrowingBlob(ingest);
    await ingest.write(bytes);
    const before = blob.openSync();
    await ingest.commit();
    const after = blob.openSync();
    for (const fd of [before, after]) {
      const read = Buffer.alloc(bytes.length);
      expect(readSync(fd, read, 0, read.length, 0)).toBe(bytes.length);
      expect(read.equals(bytes)).toBe(true);
      closeSync(fd);
    }
    const handle = await blob.open();
    await handle.close();
  });
});
