/**
 * `registry-mirror import FILE` reads the archive once, and from its first byte. The command
 * counted progress with a 'data' listener on the file stream, which set it flowing before the
 * importer had piped it anywhere; the importer first creates its spool directory (an await), and
 * whatever the file emitted meanwhile was gone: a small archive read as empty ("the archive has no
 * index.json"), a large one lost its first 64 KiB. Seen in `npm test` under load
 * (test/airgap/import-beside-server.test.ts); made certain here by slowing that mkdtemp down.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeImage } from '../helpers/test-images.js';
import { tempDir } from './airgap-fixture.js';
import { blobsOf, indexJsonOf, writeLayoutArchive } from './crafted-archives.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const slowMkdtemp = async (...args: Parameters<typeof actual.mkdtemp>) => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return actual.mkdtemp(...args);
  };
  return { ...actual, mkdtemp: slowMkdtemp, default: { ...actual, mkdtemp: slowMkdtemp } };
});

const { importCommand } = await import('../../src/cli/import.js');
const { openStores } = await import('../../src/compose.js');
const { loadConfig } = await import('../../src/config/load-config.js');
const { createLogger } = await import('../../src/log.js');

const image = makeImage({ layers: [1_500], seed: 'import-stream' });
let work: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  work = await tempDir('mirror-import-stream-');
});
afterAll(async () => {
  await work?.remove();
});

describe('registry-mirror import FILE', () => {
  it('imports a small archive whole even when the importer takes its time to start reading', async () => {
    const config = path.join(work.dir, 'mirror.config.json');
    await writeFile(config, JSON.stringify({ log: { level: 'warn' }, cache: { dir: path.join(work.dir, 'cache'), maxBytes: 2 ** 30 }, upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } } }));
    const archive = path.join(work.dir, 'small.tar');
    await writeLayoutArchive(archive, indexJsonOf([{ image, refName: 'docker.io/library/app:1' }]), blobsOf([image]));

    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await importCommand(archive, { config });
    } finally {
      stdout.mockRestore();
    }
    expect(process.exitCode ?? 0).toBe(0);

    const stores = await openStores(await loadConfig(config), createLogger('silent'));
    try {
      expect((await stores.metadata.tags.get('docker.io/library/app', '1'))?.digest).toBe(image.manifest.digest);
    } finally {
      await stores.close();
    }
  });
});
