/**
 * A worker following another worker's download in that worker's file (src/replicas/owner-file-follow.ts):
 * the bytes readable are the bytes the owner's stream delivered, the last one only with the
 * whole stream; a stream that breaks or ends short cuts every reader; the file is found after
 * the owner published it; a path outside the store is refused.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/domain/digest.js';
import { OwnerFileFollow } from '../../src/replicas/owner-file-follow.js';
import { followGrowingFile } from '../../src/storage/growing-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setUp(bytes: Buffer, progress = false) {
  const root = mkdtempSync(path.join(tmpdir(), 'owner-file-'));
  dirs.push(root);
  mkdirSync(path.join(root, 'tmp'));
  mkdirSync(path.join(root, 'blobs'));
  const files = { writing: path.join(root, 'tmp', 'fill-1'), published: path.join(root, 'blobs', 'content') };
  writeFileSync(files.writing, '');
  const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  const stream = new PassThrough();
  const abort = new AbortController();
  const follow = new OwnerFileFollow(digest, { size: bytes.length, body: stream, via: 'docker.io/library/x', progress }, files, root, abort.signal);
  /** What the owner does: the bytes go into its file, then onto its stream. */
  const ownerSends = (part: Buffer) => {
    appendFileSync(files.writing, part);
    stream.write(part);
  };
  return { root, files, follow, stream, abort, ownerSends };
}

/** Reads the whole blob through the follow as a client's response would; the error, if it was cut. */
async function readAll(follow: OwnerFileFollow, size: number): Promise<{ bytes: Buffer; error?: Error }> {
  const chunks: Buffer[] = [];
  const reader: Readable = followGrowingFile(follow.growing, 0, size - 1);
  try {
    for await (const chunk of reader) chunks.push(chunk as Buffer);
    return { bytes: Buffer.concat(chunks) };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error: error as Error };
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('OwnerFileFollow', () => {
  const blob = Buffer.from('0123456789abcdefghij');

  it('says what the owner\'s stream says: the repository it comes through, and whether it was fetched without credentials', () => {
    const { root, files } = setUp(blob);
    const digest = parseDigest(`sha256:${createHash('sha256').update(blob).digest('hex')}`);
    for (const anonymous of [true, false, undefined]) {
      const follow = new OwnerFileFollow(digest, { size: blob.length, body: new PassThrough(), via: 'docker.io/library/x', anonymous }, files, root, new AbortController().signal);
      expect([follow.via, follow.anonymous]).toEqual(['docker.io/library/x', anonymous === true]);
    }
  });

  it('makes readable what the owner sent, the last byte only with the whole stream, and reads it from the owner\'s file', async () => {
    const { follow, stream, ownerSends } = setUp(blob);
    const reading = readAll(follow, blob.length);
    ownerSends(blob.subarray(0, 12));
    await tick();
    expect(follow.growing.readable(0, blob.length - 1)).toBe(12);
    expect(follow.growing.finalSize()).toBeUndefined();
    ownerSends(blob.subarray(12, 19));
    await tick();
    expect(follow.growing.readable(0, blob.length - 1)).toBe(19);
    ownerSends(blob.subarray(19));
    stream.end();
    expect((await reading).bytes.equals(blob)).toBe(true);
    await expect(follow.settled).resolves.toEqual({ digest: follow.digest, size: blob.length });
    expect(follow.growing.finalSize()).toBe(blob.length);
  });

  it('cuts every reader when the owner\'s stream ends short: never a clean end, even with the bytes on disk', async () => {
    const { follow, stream, files } = setUp(blob);
    const readers = [readAll(follow, blob.length), readAll(follow, blob.length)];
    // The whole blob is in the file, but the owner sent all but its last byte, then ended.
    writeFileSync(files.writing, blob);
    stream.end(blob.subarray(0, blob.length - 1));
    for (const result of await Promise.all(readers)) {
      expect(result.error).toBeDefined();
      expect(result.bytes.length).toBeLessThan(blob.length);
    }
    await expect(follow.settled).rejects.toThrow(/sent 19 of its 20 bytes/);
    expect(() => follow.growing.readable(0, blob.length - 1)).toThrow();
  });

  it('cuts every reader when the owner\'s stream breaks, and when its deadline aborts it', async () => {
    const broken = setUp(blob);
    const reading = readAll(broken.follow, blob.length);
    broken.ownerSends(blob.subarray(0, 5));
    await tick();
    broken.stream.destroy(new Error('connection reset'));
    const result = await reading;
    expect(result.error).toBeDefined();
    expect(result.bytes.length).toBeLessThan(blob.length);
    await expect(broken.follow.settled).rejects.toThrow(/broke off: connection reset/);

    const late = setUp(blob);
    late.abort.abort(new Error('exceeded the fill deadline'));
    await expect(late.follow.settled).rejects.toThrow('exceeded the fill deadline');
  });

  it('refuses more bytes than announced', async () => {
    const { follow, stream } = setUp(blob);
    stream.end(Buffer.concat([blob, Buffer.from('x')]));
    await expect(follow.settled).rejects.toThrow(/more than its 20 bytes/);
  });

  it('opens the file where it was published once the owner renamed it', async () => {
    const { follow, stream, files, ownerSends } = setUp(blob);
    ownerSends(blob);
    stream.end();
    await follow.settled;
    renameSync(files.writing, files.published);
    expect((await readAll(follow, blob.length)).bytes.equals(blob)).toBe(true);
  });

  it("follows the owner's progress records (replicas/fill-progress.ts) however its chunks cut them, and reads the bytes from the file", async () => {
    const { follow, stream, files } = setUp(blob, true);
    const reading = readAll(follow, blob.length);
    appendFileSync(files.writing, blob.subarray(0, 12));
    stream.write('1');
    stream.write('2\n');
    await tick();
    expect(follow.growing.readable(0, blob.length - 1)).toBe(12);
    expect(follow.written).toBe(12);
    appendFileSync(files.writing, blob.subarray(12));
    stream.write('19\n2');
    await tick();
    expect(follow.growing.readable(0, blob.length - 1)).toBe(19);
    expect(follow.growing.finalSize()).toBeUndefined();
    stream.end('0\n');
    expect((await reading).bytes.equals(blob)).toBe(true);
    await expect(follow.settled).resolves.toEqual({ digest: follow.digest, size: blob.length });
  });

  it('cuts every reader on progress that goes back, passes the size, is not a count, or ends short or mid-record', async () => {
    const cases: Array<[string, RegExp]> = [
      ['12\n5\n', /did not advance \(5 after 12\)/],
      ['12\n12\n', /did not advance/],
      ['21\n', /past its 20 bytes/],
      ['12\nx\n', /not a byte count/],
      ['-1\n', /not a byte count/],
      ['012\n', /not a byte count/],
      ['1'.repeat(25), /longer than 20 characters/],
      ['12\n19\n', /sent 19 of its 20 bytes/],
      ['12\n2', /sent 12 of its 20 bytes/],
    ];
    for (const [records, error] of cases) {
      const { follow, stream, files } = setUp(blob, true);
      writeFileSync(files.writing, blob);
      const reading = readAll(follow, blob.length);
      stream.end(records);
      await expect(follow.settled, records).rejects.toThrow(error);
      const result = await reading;
      expect(result.error, records).toBeDefined();
      expect(result.bytes.length, records).toBeLessThan(blob.length);
    }
  });

  it('refuses a file outside the store', () => {
    const { root, stream, abort, follow } = setUp(blob);
    for (const files of [{ writing: '/etc/passwd', published: path.join(root, 'blobs', 'x') }, { writing: path.join(root, 'tmp', 'x'), published: path.join(root, '..', 'elsewhere') }, { writing: root, published: path.join(root, 'blobs', 'x') }]) {
      expect(() => new OwnerFileFollow(follow.digest, { size: blob.length, body: stream, via: 'v' }, files, root, abort.signal)).toThrow(RangeError);
    }
  });
});
