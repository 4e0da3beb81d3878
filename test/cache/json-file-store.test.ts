/** The file-backed tag store: atomic saves, flush on disconnect, crash leftovers, keyv-file's format. */
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

  it('a crash mid-save leaves the previous whole file; start-up removes the temp file', async () => {
    const first = open();
    await first.set('a', { digest: 'sha256:aa' });
    await first.disconnect();
    // What a kill during a save leaves: a truncated temp file beside the intact one.
    await writeFile(`${file}.0e3a.tmp`, '{"cache":[["keyv:a",{"val');
    const second = open();
    expect(await second.get('a')).toEqual({ digest: 'sha256:aa' });
    expect(await readdir(dir)).toEqual(['tags.json']);
    await second.disconnect();
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
