/**
 * What the filesystem content store adds to the contract: the on-disk layout of every release
 * (nginx X-Accel-Redirect and caches of earlier releases rely on it), and temp files that belong
 * to their process (issue 12 item 5): a store opening the same root removes only temp files of
 * processes that are gone, never those of a live one, whatever its pid history.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../src/domain/digest.js';
import { FsContentStore } from '../../src/storage/fs/fs-content-store.js';
import { currentProcess, ownerName, parseOwnerName } from '../../src/storage/fs/process-owner.js';
import { waitFor } from '../helpers/http.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'fs-store-'));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

const tmp = () => path.join(root, 'tmp');
/** Where the store publishes `digest` (the layout test spells it out). */
const publishedPath = (digest: Digest) => path.join(root, 'blobs', 'sha256', digest.hex.slice(0, 2), digest.hex);

async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name))).sort();
}

/** Writes `bytes` through a writer of `store` and commits them under their digest. */
async function publishBytes(store: FsContentStore, bytes: Buffer) {
  const writer = await store.writer();
  await writer.write(bytes);
  return writer.commit(digestOf(bytes));
}

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

describe('FsContentStore layout', () => {
  it('publishes content at blobs/<alg>/<2 hex>/<hex> and opens it as a file body without a stat when the size is known', async () => {
    const store = await FsContentStore.open(root);
    const bytes = Buffer.from('layout');
    const digest = digestOf(bytes);
    await publishBytes(store, bytes);
    const relative = `sha256/${digest.hex.slice(0, 2)}/${digest.hex}`;
    expect(existsSync(path.join(root, 'blobs', relative))).toBe(true);
    expect(await store.open(digest)).toEqual({ kind: 'file', size: bytes.length, path: path.join(root, 'blobs', relative), relativePath: relative });
    await store.delete(digest);
    // The caller's size is taken as it is: a file that is gone shows up when it is opened for sending.
    expect(await store.open(digest, { knownSize: 6 })).toMatchObject({ kind: 'file', size: 6 });
    expect(await store.open(digest)).toBeUndefined();
    await store.close();
  });
});

describe('publishing content that is already published', () => {
  it('keeps the published file and drops the new one (no sync, no rename), as distribution does for a blob pushed again', async () => {
    const store = await FsContentStore.open(root);
    const bytes = Buffer.from('pushed twice');
    const digest = digestOf(bytes);
    await publishBytes(store, bytes);
    const published = publishedPath(digest);
    const inode = statSync(published).ino;
    expect(await publishBytes(store, bytes)).toEqual({ digest, size: bytes.length });
    expect(statSync(published).ino).toBe(inode);
    expect(await filesBelow(tmp())).toEqual([]);
    expect(readFileSync(published)).toEqual(bytes);
    await store.close();
  });

  it('replaces a published file of the wrong size (damaged by hand) with the verified bytes', async () => {
    const store = await FsContentStore.open(root);
    const bytes = Buffer.from('the right bytes');
    const digest = digestOf(bytes);
    const published = publishedPath(digest);
    await mkdir(path.dirname(published), { recursive: true });
    await writeFile(published, 'short');
    await publishBytes(store, bytes);
    expect(readFileSync(published)).toEqual(bytes);
    expect(await filesBelow(tmp())).toEqual([]);
    await store.close();
  });
});

describe('temp files belong to their process', () => {
  it('a second store on the same root leaves a live writer alone; close removes only its own directory', async () => {
    const first = await FsContentStore.open(root);
    const writer = await first.writer();
    await writer.write(Buffer.from('in progress'));
    const second = await FsContentStore.open(root);
    expect(await filesBelow(tmp())).toEqual([`${ownerName(currentProcess())}/${writer.id}`]);
    await writer.write(Buffer.from(', still'));
    await writer.commit(digestOf(Buffer.from('in progress, still')));
    await second.close();
    await first.close();
    expect(await readdir(tmp())).toEqual([]);
  });

  it('removes the temp directories of processes that are gone, also when their pid now belongs to another process', async () => {
    const dead = path.join(tmp(), `${deadPid()}-12345`);
    const reused = path.join(tmp(), `${process.pid}-1`);
    const live = path.join(tmp(), `${process.ppid}-${'x'}`);
    for (const dir of [dead, reused, live]) {
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'part'), 'leftover');
    }
    const store = await FsContentStore.open(root);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(reused)).toBe(false);
    expect(existsSync(live)).toBe(true);
    await store.close();
  });

  it('removes the temp directory of a zombie (a worker killed with its primary, not reaped yet)', async () => {
    // sh starts a background sleep and becomes another; killing the group leaves the orphaned
    // background sleep a zombie until init reaps it.
    const shell = spawn('sh', ['-c', 'sleep 60 & echo $!; exec sleep 60'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const orphan = Number((await once(shell.stdout!, 'data'))[0].toString().trim());
    const owner = parseOwnerName(ownerName({ pid: orphan, startTime: readFileSync(`/proc/${orphan}/stat`, 'utf8').split(') ')[1]!.split(' ')[19] }))!;
    process.kill(-shell.pid!, 'SIGKILL');
    await waitFor(() => /^[^)]*\) [ZX]/.test(readFileSync(`/proc/${orphan}/stat`, 'utf8')), 5_000, 'the orphan to be a zombie');
    const dir = path.join(tmp(), ownerName(owner));
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'part'), 'leftover');
    const store = await FsContentStore.open(root);
    expect(existsSync(dir)).toBe(false);
    await store.close();
  });

  it('removes loose temp files of earlier releases once they are stale, not while they may be written', async () => {
    await mkdir(tmp(), { recursive: true });
    const stale = path.join(tmp(), 'abc-1.part');
    const fresh = path.join(tmp(), 'abc-2.part');
    await writeFile(stale, 'old download');
    await writeFile(fresh, 'maybe running');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(stale, hourAgo, hourAgo);
    const store = await FsContentStore.open(root);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    await store.close();
  });
});
