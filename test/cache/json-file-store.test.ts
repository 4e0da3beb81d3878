/**
 * The file-backed tag store: atomic saves, flush on disconnect, crash leftovers, keyv-file's
 * format, and several processes sharing one file (merged saves, tombstones, reload on a miss).
 */
import { readdir, readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Keyv from 'keyv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonFileStore } from '../../src/metadata/json-file-store.js';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'json-store-'));
  file = path.join(dir, 'tags.json');
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const open = (options: ConstructorParameters<typeof JsonFileStore>[1] = {}) => new Keyv<{ digest: string }>({ store: new JsonFileStore(file, options), namespace: 'tags' });

describe('JsonFileStore', () => {
  it('persists across instances, flushing pending writes on disconnect', async () => {
    const first = open({ writeDelayMs: 60_000 });
    await first.set('docker.io/library/a:v1', { digest: 'sha256:aa' });
    await first.disconnect();
    const second = open();
    expect(await second.get('docker.io/library/a:v1')).toEqual({ digest: 'sha256:aa' });
    await second.disconnect();
  });

  it('a crash mid-save leaves the previous whole file; the next save (under the lock) removes the temp file', async () => {
    const first = open();
    await first.set('a', { digest: 'sha256:aa' });
    await first.disconnect();
    // What a kill during a save leaves: a truncated temp file beside the intact one.
    await writeFile(`${file}.0e3a.tmp`, '{"cache":[["keyv:a",{"val');
    const second = open();
    expect(await second.get('a')).toEqual({ digest: 'sha256:aa' });
    await second.set('b', { digest: 'sha256:bb' });
    await second.disconnect();
    // The lock directory (tags.json.lock) is gone too once the save released it.
    expect(await readdir(dir)).toEqual(['tags.json']);
  });

  it('moves a corrupt file aside and starts empty instead of failing', async () => {
    await writeFile(file, '{"cache":[["tags:a",');
    const keyv = open();
    expect(await keyv.get('a')).toBeUndefined();
    await keyv.set('b', { digest: 'sha256:bb' });
    await keyv.disconnect();
    const names = await readdir(dir);
    expect(names).toContain('tags.json');
    expect(names.some((name) => name.startsWith('tags.json.corrupt-'))).toBe(true);
  });

  it('reads files written by keyv-file', async () => {
    const { KeyvFile } = await import('keyv-file');
    const legacy = new Keyv({ store: new KeyvFile({ filename: file, writeDelay: 1 }), namespace: 'tags' });
    await legacy.set('a', { digest: 'sha256:aa' }, 60_000);
    await legacy.disconnect();
    expect(JSON.parse(await readFile(file, 'utf8')).cache).toHaveLength(1);
    const keyv = open();
    expect(await keyv.get('a')).toEqual({ digest: 'sha256:aa' });
    await keyv.disconnect();
  });

  it('read-only: never writes', async () => {
    const keyv = open({ readOnly: true });
    await keyv.set('a', { digest: 'sha256:aa' });
    await keyv.disconnect();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('JsonFileStore shared by several processes (two instances on one file)', () => {
  const digest = (n: number) => ({ digest: `sha256:${String(n).padStart(2, '0')}` });

  it('interleaved saves lose no write: each save merges what the other wrote', async () => {
    const [a, b] = [open({ writeDelayMs: 60_000 }), open({ writeDelayMs: 60_000 })];
    const stores = [a, b];
    for (let round = 0; round < 20; round += 1) {
      for (const [index, keyv] of stores.entries()) await keyv.set(`p${index}-k${round}`, digest(round));
      // Both saves race for the lock; neither may drop the other's keys.
      await Promise.all(stores.map((keyv) => (keyv.store as JsonFileStore).flush()));
    }
    await Promise.all(stores.map((keyv) => keyv.disconnect()));
    const fresh = open();
    for (let round = 0; round < 20; round += 1) {
      expect(await fresh.get(`p0-k${round}`)).toEqual(digest(round));
      expect(await fresh.get(`p1-k${round}`)).toEqual(digest(round));
    }
    // Each save also took the other's entries into memory.
    expect(await a.get('p1-k19')).toEqual(digest(19));
    await fresh.disconnect();
  });

  it('the newest version of a key wins, whichever process saves last', async () => {
    const [a, b] = [open({ writeDelayMs: 60_000 }), open({ writeDelayMs: 60_000 })];
    await a.set('k', digest(1));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await b.set('k', digest(2));
    await b.disconnect();
    await a.disconnect();
    const fresh = open();
    expect(await fresh.get('k')).toEqual(digest(2));
    await fresh.disconnect();
  });

  it('a deletion is a tombstone: a process still holding the old entry does not resurrect it', async () => {
    const first = open();
    await first.set('k', digest(1));
    await first.disconnect();
    const [a, b] = [open({ writeDelayMs: 60_000 }), open({ writeDelayMs: 60_000 })];
    expect(await a.get('k')).toEqual(digest(1));
    expect(await b.delete('k')).toBe(true);
    await b.disconnect();
    await a.set('other', digest(2));
    await a.disconnect();
    expect(await a.get('k')).toBeUndefined();
    const fresh = open();
    expect(await fresh.get('k')).toBeUndefined();
    expect(await fresh.get('other')).toEqual(digest(2));
    await fresh.disconnect();
    expect(JSON.parse(await readFile(file, 'utf8')).deleted.map(([key]: [string]) => key)).toEqual(['tags:k']);
  });

  it('a miss re-reads a file another process changed; a hit is served from memory', async () => {
    const reader = open();
    const writer = open();
    await writer.set('seen', digest(1));
    await writer.disconnect();
    expect(await reader.get('seen')).toEqual(digest(1));
    // The same key changed on disk: a hit does not look at the file, so the reader keeps its copy.
    await writer.set('seen', digest(2));
    await writer.disconnect();
    expect(await reader.get('seen')).toEqual(digest(1));
    // A miss (after the re-check interval) takes the file's new version of every key.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await reader.get('absent')).toBeUndefined();
    expect(await reader.get('seen')).toEqual(digest(2));
    await reader.disconnect();
  });

  it('with a merge function, lists both processes extended keep every element (createKeyv repositories)', async () => {
    const { createKeyv } = await import('../../src/metadata/create-keyv.js');
    const { unionTagLists } = await import('../../src/metadata/tag-index.js');
    const config = { metadata: { store: 'sqlite' as const }, cache: { dir } as never };
    const [a, b] = await Promise.all([createKeyv<string[]>(config, 'repositories', { merge: unionTagLists }), createKeyv<string[]>(config, 'repositories', { merge: unionTagLists })]);
    await a.set('docker.io/library/alpine', ['3.19']);
    await b.set('docker.io/library/alpine', [':odd', '3.20']);
    await a.disconnect();
    await b.disconnect();
    const fresh = await createKeyv<string[]>(config, 'repositories');
    // ':odd' is stored escaped by keyv (so it sorts after the others), and comes back intact.
    expect(await fresh.get('docker.io/library/alpine')).toEqual(['3.19', '3.20', ':odd']);
    await fresh.disconnect();
  });
});
