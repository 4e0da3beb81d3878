/**
 * Archives given to `import` (airgap/oci-archive-reader.ts, airgap/import-archive.ts): tars
 * built from plausible and hostile entries (path traversal, links, long names, corrupt blobs,
 * any JSON as index.json and oci-layout), then mutated (bytes flipped, cut short, garbage
 * inserted). Whatever comes in: the import ends, it fails only with a MirrorError, it writes
 * nothing outside its cache directory, every published blob hashes to its name, and no temp
 * file is left behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOciArchive } from '../../src/airgap/import-archive.js';
import { readOciArchive } from '../../src/airgap/oci-archive-reader.js';
import type { Mirror } from '../../src/compose.js';
import { MirrorError } from '../../src/domain/errors.js';
import { tempDir, toolMirror } from '../airgap/airgap-fixture.js';
import { FUZZ_IMPORT, FUZZ_IO } from './fuzz-support.js';

interface Entry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link';
  body: Buffer;
  linkname?: string;
}

/** Where a path traversal would land; unique per test run, checked for afterwards. */
const ESCAPE = `escape-${randomBytes(6).toString('hex')}`;
const IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sha512 = (bytes: Buffer) => createHash('sha512').update(bytes).digest('hex');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

const bytes = fc.uint8Array({ maxLength: 3000 }).map((array) => Buffer.from(array));
const jsonBytes = fc.jsonValue({ maxDepth: 3 }).map(json);
const blobBody = fc.oneof(bytes, jsonBytes, fc.constant(Buffer.alloc(0)));

/** A small image whose blobs and manifest are all in the archive, as `export` writes it. */
const image = fc.tuple(bytes, jsonBytes, fc.string({ maxLength: 40 })).map(([layer, config, refName]) => {
  const descriptor = (mediaType: string, body: Buffer) => ({ mediaType, digest: `sha256:${sha256(body)}`, size: body.length });
  const manifest = json({ schemaVersion: 2, mediaType: IMAGE_MANIFEST, config: descriptor('application/vnd.oci.image.config.v1+json', config), layers: [descriptor('application/vnd.oci.image.layer.v1.tar', layer)] });
  const index = { schemaVersion: 2, manifests: [{ ...descriptor(IMAGE_MANIFEST, manifest), annotations: { 'org.opencontainers.image.ref.name': refName } }] };
  return [layer, config, manifest].map((body): Entry => ({ name: `blobs/sha256/${sha256(body)}`, type: 'file', body })).concat({ name: 'index.json', type: 'file', body: json(index) });
});

const hostileName = fc.constantFrom(
  `../${ESCAPE}`, `/tmp/${ESCAPE}`, `blobs/sha256/../../${ESCAPE}`, `blobs/../../../${ESCAPE}`, `./../${ESCAPE}`,
  `blobs/sha256/${'a'.repeat(64)}/../../../${ESCAPE}`, `blobs/sha256/${'b'.repeat(64)}/x`, `blobs/SHA256/${'c'.repeat(64)}`,
  `blobs/sha256/${'d'.repeat(63)}`, `blobs/md5/${'e'.repeat(32)}`, `${'x/'.repeat(80)}index.json`, 'index.json/', 'blobs', 'blobs/sha256',
);
const entry: fc.Arbitrary<Entry> = fc.oneof(
  blobBody.map((body) => ({ name: `blobs/sha256/${sha256(body)}`, type: 'file' as const, body })),
  blobBody.map((body) => ({ name: `./blobs/sha512/${sha512(body)}`, type: 'file' as const, body })),
  fc.tuple(blobBody, fc.uint8Array({ minLength: 32, maxLength: 32 })).map(([body, hash]) => ({ name: `blobs/sha256/${Buffer.from(hash).toString('hex')}`, type: 'file' as const, body })),
  fc.oneof(jsonBytes, bytes, fc.constant(json({ imageLayoutVersion: '1.0.0' }))).map((body) => ({ name: 'oci-layout', type: 'file' as const, body })),
  fc.oneof(jsonBytes, bytes, fc.constant(json({ manifests: [null, 1, 'x', { digest: 7 }, { digest: 'sha256:zz' }] }))).map((body) => ({ name: 'index.json', type: 'file' as const, body })),
  fc.tuple(hostileName, bytes).map(([name, body]) => ({ name, type: 'file' as const, body })),
  fc.tuple(hostileName, fc.constantFrom<Entry['type']>('directory', 'symlink', 'link'), fc.constantFrom('/etc/passwd', '../../..', `../${ESCAPE}`)).map(([name, type, linkname]) => ({ name, type, body: Buffer.alloc(0), linkname })),
);

async function packTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const { name, type, body, linkname } of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (type === 'file') pack.entry({ name, type, size: body.length }, body, done);
      else pack.entry({ name, type, linkname }, done);
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

type Mutation = { kind: 'none' } | { kind: 'flip'; at: number[]; value: number } | { kind: 'cut'; at: number } | { kind: 'insert'; at: number; bytes: Uint8Array };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 1100 }) }),
);

/** Header fields sit in the first 512 bytes of each entry; flips are steered there half the time. */
function mutate(tarBytes: Buffer, change: Mutation): Buffer {
  const copy = Buffer.from(tarBytes);
  switch (change.kind) {
    case 'none': return copy;
    case 'flip':
      for (const at of change.at) copy[at % 2 === 0 ? (at >> 1) % copy.length : ((at >> 1) % Math.ceil(copy.length / 512)) * 512 + (at % 512)] = change.value;
      return copy;
    case 'cut': return copy.subarray(0, change.at % (copy.length + 1));
    case 'insert': {
      const at = change.at % (copy.length + 1);
      return Buffer.concat([copy.subarray(0, at), Buffer.from(change.bytes), copy.subarray(at)]);
    }
  }
}

/** In chunks of varying size, as a file or a socket would deliver them. */
function streamOf(data: Buffer, chunkSize: number): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += chunkSize) chunks.push(data.subarray(at, at + chunkSize));
  return Readable.from(chunks);
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((item) => !item.isDirectory()).map((item) => path.join(item.parentPath, item.name));
}

/** Resolves, or rejects with the error; a hang past the deadline fails the property. */
async function settle<T>(work: Promise<T>, what: string): Promise<{ value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within 10 s`)), 10_000)));
  try {
    return { value: await Promise.race([work, deadline]) };
  } catch (error) {
    if ((error as Error).message.endsWith('did not end within 10 s')) throw error;
    return { error };
  } finally {
    clearTimeout(timer);
  }
}

describe('OCI archives given to import', () => {
  let sandbox: { dir: string; remove: () => Promise<void> };
  let cacheDir: string;
  let mirror: Mirror;

  beforeAll(async () => {
    sandbox = await tempDir('mirror-fuzz-archive-');
    cacheDir = path.join(sandbox.dir, 'cache');
    mirror = await toolMirror(cacheDir, { 'docker.io': 'http://127.0.0.1:9' });
  });
  afterAll(async () => {
    await mirror?.close();
    await sandbox?.remove();
  });

  async function expectCacheIntact(): Promise<void> {
    for (const file of await filesUnder(sandbox.dir)) {
      expect(file.startsWith(`${cacheDir}${path.sep}`), `${file} is outside the cache`).toBe(true);
      const relative = path.relative(cacheDir, file).split(path.sep);
      expect(relative[0], `${file} left behind`).not.toBe('tmp');
      if (relative[0] === 'blobs') {
        const [, algorithm, , hex] = relative;
        const content = await readFile(file);
        expect(createHash(algorithm!).update(content).digest('hex'), `${file} does not hash to its name`).toBe(hex);
      }
    }
    for (const escaped of [path.join(sandbox.dir, '..', ESCAPE), path.join('/tmp', ESCAPE), path.join(cacheDir, '..', ESCAPE)]) expect(existsSync(escaped), escaped).toBe(false);
  }

  it('reads any tar, however broken, failing only with a MirrorError and writing only verified blobs into the cache', async () => {
    const archive = fc.tuple(fc.array(entry, { maxLength: 8 }), fc.option(image, { nil: undefined })).map(([entries, valid]) => [...(valid ?? []), ...entries]);
    await fc.assert(fc.asyncProperty(archive, mutation, fc.constantFrom(1, 7, 512, 4096, 65536), async (entries, change, chunkSize) => {
      const data = mutate(await packTar(entries), change);
      const outcome = await settle(readOciArchive(streamOf(data, chunkSize), mirror), 'readOciArchive');
      await outcome.value?.close();
      if (outcome.error !== undefined) expect(outcome.error, String(outcome.error)).toBeInstanceOf(MirrorError);
      await expectCacheIntact();
    }), FUZZ_IO);
  });

  it('imports any index.json and oci-layout, failing only with a MirrorError', async () => {
    const archive = fc.tuple(image, fc.array(entry, { maxLength: 4 })).map(([valid, entries]) => [...valid, ...entries]);
    await fc.assert(fc.asyncProperty(archive, mutation, async (entries, change) => {
      const data = mutate(await packTar(entries), change);
      const outcome = await settle(importOciArchive(streamOf(data, 4096), mirror), 'importOciArchive');
      if (outcome.error !== undefined) expect(outcome.error, String(outcome.error)).toBeInstanceOf(MirrorError);
      await expectCacheIntact();
    }), FUZZ_IMPORT);
  });
});
