/**
 * Interoperability of the archives with skopeo (skipped where skopeo is not installed): skopeo
 * reads what export writes, and import reads what skopeo writes (blobs before index.json,
 * directory entries, its own index.json).
 *
 * skopeo 1.9 (containers/image oci/layout) only looks up index.json entries whose media type is
 * an OCI manifest or index, so these images are OCI-typed; Docker-typed images in our archives
 * are exercised by warm-export-import.test.ts through our own import.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceMissing } from '../helpers/required-services.js';
import { parseDigest } from '../../src/domain/digest.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { sha256 } from '../helpers/http.js';
import { makeImage, makeIndex, pushImage } from '../helpers/test-images.js';
import { exportTo, importFrom, readTar, tempDir, toolMirror, warm } from './airgap-fixture.js';

const SKOPEO = ['/usr/bin/skopeo', '/usr/local/bin/skopeo'].find((candidate) => existsSync(candidate));
const run = promisify(execFile);

const alpine = makeIndex([
  makeImage({ layers: [30_000], seed: 'sk-amd64' }),
  makeImage({ layers: [31_000], seed: 'sk-arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
]);
const app = makeImage({ layers: [12_000, 500], seed: 'sk-app' });

describe.skipIf(serviceMissing(!SKOPEO, 'skopeo is not installed (apt-get install skopeo)'))('skopeo and OCI archives', () => {
  let hub: FakeRegistry;
  let work: { dir: string; remove: () => Promise<void> };
  let archive: string;
  let skopeoArgs: string[];

  beforeAll(async () => {
    hub = await startFakeRegistry();
    pushImage(hub, 'library/alpine', '3.20', alpine);
    pushImage(hub, 'myorg/app', 'v1', app);
    work = await tempDir('airgap-skopeo-');
    const policy = path.join(work.dir, 'policy.json');
    await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    skopeoArgs = ['--policy', policy, '--tmpdir', work.dir];
    archive = path.join(work.dir, 'export.tar');
    const mirror = await toolMirror(path.join(work.dir, 'cache'), { 'docker.io': hub.url });
    try {
      expect((await warm(mirror, ['library/alpine:3.20', 'myorg/app:v1'])).map((result) => result.error)).toEqual([undefined, undefined]);
      await exportTo(mirror, ['alpine:3.20', 'docker.io/myorg/app:v1'], archive);
    } finally {
      await mirror.close();
    }
  });

  afterAll(async () => {
    await Promise.all([hub?.close(), work?.remove()]);
  });

  const skopeo = async (args: string[]) => (await run(SKOPEO!, [...skopeoArgs, ...args], { timeout: 60_000, maxBuffer: 64 * 2 ** 20, env: { PATH: process.env.PATH, HOME: work.dir } })).stdout;

  it('skopeo inspect reads exported images by their full reference', async () => {
    const raw = await skopeo(['inspect', '--raw', `oci-archive:${archive}:docker.io/library/alpine:3.20`]);
    expect(sha256(Buffer.from(raw))).toBe(alpine.manifest.digest);
    const inspected = JSON.parse(await skopeo(['inspect', `oci-archive:${archive}:docker.io/myorg/app:v1`]));
    expect(inspected.Digest).toBe(app.manifest.digest);
    expect(inspected.Layers).toEqual(app.layers.map((layer) => layer.digest));
  });

  it('import reads an archive written by skopeo and restores its tags', async () => {
    const written = path.join(work.dir, 'skopeo.tar');
    await skopeo(['copy', '--all', '--preserve-digests', `oci-archive:${archive}:docker.io/library/alpine:3.20`, `oci-archive:${written}:docker.io/library/alpine:3.20`]);
    const names = (await readTar(written)).map((entry) => entry.name);
    expect(names).toContain('index.json');
    const mirror = await toolMirror(path.join(work.dir, 'from-skopeo'), { 'docker.io': 'http://127.0.0.1:9' });
    try {
      const result = await importFrom(mirror, written);
      expect(result.failures).toEqual([]);
      expect(result.images).toEqual([{ name: 'docker.io/library/alpine:3.20', digest: alpine.manifest.digest, tag: 'docker.io/library/alpine:3.20' }]);
      for (const image of alpine.images) {
        expect((await mirror.manifests.read(parseDigest(image.manifest.digest)))?.digest).toBe(image.manifest.digest);
        for (const blob of [image.config, ...image.layers]) expect((await mirror.content.stat(parseDigest(blob.digest)))?.size).toBe(blob.size);
      }
    } finally {
      await mirror.close();
    }
  });
});
