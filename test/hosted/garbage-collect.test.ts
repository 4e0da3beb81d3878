/**
 * Garbage collection of hosted content (issue 14): after a hosted image is deleted, `gc` frees
 * its unreferenced blobs and nothing else; cached blobs, layers other images share, blobs just
 * uploaded and uploads in progress survive; manifests reachable from tags (through indexes and
 * referrers) are kept, untagged ones past the grace period go. The CLI runs as its own process
 * beside the serving mirror, on the same cache, as an operator would run it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { basicAuth, sha256 } from '../helpers/http.js';
import { makeImage, makeIndex, pushImage, seededBytes, type TestImage } from '../helpers/test-images.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { call, openUpload, pushBlob, pushImageTo, putManifest, startHosted, withDigest, type HostedSetup } from './hosted-fixture.js';

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const HOUR = 3600_000;
const KiB = 1024;
const AUTH = { authorization: basicAuth('admin', 'admin-secret') };

let env: HostedSetup | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const contentPath = (cacheDir: string, digest: string) => path.join(cacheDir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
const stored = (digest: string) => existsSync(contentPath(env!.mirror.cacheDir, digest));
const digestsOf = (image: TestImage) => [image.manifest.digest, image.config.digest, ...image.layers.map((layer) => layer.digest)];

/** Pretends everything retained was last used two hours ago, except `fresh`. */
async function ageRetained(fresh: string[] = []): Promise<void> {
  const { blobs } = env!.mirror.mirror.metadata;
  for await (const record of blobs.entries()) {
    if (record.retained && !fresh.includes(record.digest)) await blobs.put(record.digest, record.size, { usedAt: Date.now() - 2 * HOUR });
  }
}

async function gcCli(args: string[]): Promise<Record<string, number | boolean>> {
  const configFile = path.join(env!.mirror.cacheDir, '..', `gc-${path.basename(env!.mirror.cacheDir)}.json`);
  const { hosted, upstreams } = env!.mirror.config;
  await writeFile(configFile, JSON.stringify({ cache: { dir: env!.mirror.cacheDir }, hosted: { repositories: hosted.repositories, gc: hosted.gc }, upstreams: { 'docker.io': { url: upstreams['docker.io']!.url } } }));
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'gc', '--json', '--config', configFile, ...args], { cwd: PROJECT_ROOT, timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, number | boolean>;
}

describe('registry-mirror gc beside a running mirror', () => {
  it('after deleting a hosted image frees its unreferenced blobs and nothing else', async () => {
    env = await startHosted({ users: { admin: 'admin-secret' }, config: { hosted: { gc: { intervalSeconds: 0, graceSeconds: 3600 } } } });
    const base = env.mirror.url;
    const cached = makeImage({ layers: [20 * KiB, 21 * KiB], seed: 'gc-cached' });
    pushImage(env.upstream, 'library/alpine', '3.20', cached);
    for (const digest of digestsOf(cached).slice(1)) await call(`${base}/v2/library/alpine/blobs/${digest}`, { headers: AUTH });
    await call(`${base}/v2/library/alpine/manifests/3.20`, { headers: AUTH });
    // Two hosted images sharing a layer; the deleted one also references a cached layer.
    const shared = seededBytes(30 * KiB, 'gc-shared');
    const doomed = makeImage({ layers: [30 * KiB, 31 * KiB], seed: 'gc-doomed' });
    const kept = makeImage({ layers: [30 * KiB, 32 * KiB], seed: 'gc-kept' });
    for (const image of [doomed, kept]) image.layers[0] = { ...image.layers[0]!, bytes: shared, digest: sha256(shared) };
    const doomedManifest = rebuilt(doomed, [...doomed.layers, cached.layers[0]!]);
    const keptManifest = rebuilt(kept, kept.layers);
    await pushAll('team/app', 'v1', doomed, doomedManifest, { mountFrom: 'library/alpine', cachedLayer: cached.layers[0]!.digest });
    await pushAll('team/other', 'v1', kept, keptManifest);
    // An upload in progress, and a blob pushed a moment ago that nothing references yet.
    const upload = await openUpload(base, 'team/app', AUTH);
    const partial = seededBytes(10 * KiB, 'gc-partial');
    expect((await call(upload, { method: 'PATCH', headers: { ...AUTH, 'content-range': `0-${5 * KiB - 1}` }, body: partial.subarray(0, 5 * KiB) })).status).toBe(202);
    expect((await call(`${base}/v2/team/app/manifests/${sha256(doomedManifest)}`, { method: 'DELETE', headers: AUTH })).status).toBe(202);
    await ageRetained();
    const fresh = await pushBlob(base, 'team/app', seededBytes(7 * KiB, 'gc-fresh'), AUTH);

    const dry = await gcCli(['--dry-run']);
    expect(dry).toMatchObject({ dryRun: true, manifestsRemoved: 0, blobsDeleted: 3, blobsReleased: 1 });
    expect(stored(doomed.layers[1]!.digest)).toBe(true);

    const report = await gcCli([]);
    expect(report).toMatchObject({ dryRun: false, blobsDeleted: 3, bytesDeleted: 31 * KiB + doomed.config.size + doomedManifest.length, blobsReleased: 1, uploadsExpired: 0 });
    // Gone: the deleted image's own layer, config and manifest.
    for (const digest of [doomed.layers[1]!.digest, doomed.config.digest, sha256(doomedManifest)]) expect(stored(digest), digest).toBe(false);
    // Kept: the shared layer and the other image, the cached image (its layer evictable again), the fresh blob.
    for (const digest of [sha256(shared), kept.layers[1]!.digest, kept.config.digest, sha256(keptManifest), ...digestsOf(cached), fresh]) expect(stored(digest), digest).toBe(true);
    expect(await env.mirror.mirror.metadata.blobs.get(cached.layers[0]!.digest)).toMatchObject({ retained: false });
    expect((await call(`${base}/v2/team/other/manifests/v1`, { headers: AUTH })).body.equals(keptManifest)).toBe(true);
    expect((await call(`${base}/v2/team/other/blobs/${sha256(shared)}`, { headers: AUTH })).body.equals(shared)).toBe(true);
    expect((await call(`${base}/v2/team/app/manifests/v1`, { headers: AUTH })).status).toBe(404);
    env.upstream.resetCounts();
    expect((await call(`${base}/v2/library/alpine/blobs/${cached.layers[0]!.digest}`, { headers: AUTH })).body.equals(cached.layers[0]!.bytes)).toBe(true);
    expect(env.upstream.requests).toEqual([]);
    // The upload in progress goes on.
    expect((await call(upload, { method: 'PATCH', headers: { ...AUTH, 'content-range': `${5 * KiB}-${10 * KiB - 1}` }, body: partial.subarray(5 * KiB) })).status).toBe(202);
    expect((await call(withDigest(upload, sha256(partial)), { method: 'PUT', headers: AUTH })).status).toBe(201);
  });

  async function pushAll(repository: string, tag: string, image: TestImage, manifest: Buffer, mount?: { mountFrom: string; cachedLayer: string }): Promise<void> {
    for (const blob of [image.config, ...image.layers]) await pushBlob(env!.mirror.url, repository, blob.bytes, AUTH);
    if (mount) {
      // Linked first, published a moment later (blob-download.ts): a mount in between would be a plain upload.
      await fillsSettled(env!.mirror);
      const mounted = await call(`${env!.mirror.url}/v2/${repository}/blobs/uploads/?mount=${mount.cachedLayer}&from=${mount.mountFrom}`, { method: 'POST', headers: AUTH });
      expect(mounted.status).toBe(201);
    }
    expect((await putManifest(env!.mirror.url, repository, tag, { bytes: manifest, mediaType: image.manifest.mediaType }, AUTH)).status).toBe(201);
  }
});

describe('what the mark keeps', () => {
  it('tagged images, index children, referrers of kept manifests and young manifests stay; an untagged old manifest goes', async () => {
    env = await startHosted({ config: { hosted: { gc: { intervalSeconds: 0, graceSeconds: 3600 } } } });
    const base = env.mirror.url;
    const children = [makeImage({ layers: [1000], seed: 'mark-amd64' }), makeImage({ layers: [1001], seed: 'mark-arm64', platform: { architecture: 'arm64', os: 'linux' } })];
    const index = makeIndex(children);
    await pushImageTo(base, 'team/multi', 'v1', index);
    const signature = makeImage({ layers: [50], seed: 'mark-sig', subject: index.manifest, artifactType: 'application/vnd.example.sig' });
    await pushImageTo(base, 'team/multi', undefined, signature);
    const untagged = makeImage({ layers: [60], seed: 'mark-untagged' });
    await pushImageTo(base, 'team/multi', undefined, untagged);
    await ageRetained();
    // Pushed just now: an index's child before its index (a push in progress).
    const inProgress = makeImage({ layers: [70], seed: 'mark-in-progress' });
    await pushImageTo(base, 'team/multi', undefined, inProgress);

    const report = await env.mirror.mirror.hosted.collect();
    expect(report).toMatchObject({ manifestsRemoved: 1, blobsDeleted: 3 });
    expect((await call(`${base}/v2/team/multi/manifests/${untagged.manifest.digest}`)).status).toBe(404);
    for (const digest of [index.manifest.digest, ...children.map((child) => child.manifest.digest), signature.manifest.digest, inProgress.manifest.digest]) {
      expect((await call(`${base}/v2/team/multi/manifests/${digest}`)).status, digest).toBe(200);
    }
    for (const child of [...children, signature, inProgress]) for (const digest of digestsOf(child).slice(1)) expect(stored(digest), digest).toBe(true);
    for (const digest of digestsOf(untagged)) expect(stored(digest), digest).toBe(false);
    const referrers = JSON.parse((await call(`${base}/v2/team/multi/referrers/${index.manifest.digest}`)).body.toString()) as { manifests: unknown[] };
    expect(referrers.manifests).toHaveLength(1);
  });

  it('a push that reuses a layer the collector is about to take either keeps it or is refused, never left broken', async () => {
    env = await startHosted({ config: { hosted: { gc: { intervalSeconds: 0, graceSeconds: 3600 } } } });
    const image = makeImage({ layers: [2000], seed: 'race' });
    for (const blob of [image.config, ...image.layers]) await pushBlob(env.mirror.url, 'team/race', blob.bytes);
    await ageRetained();
    const [push] = await Promise.all([putManifest(env.mirror.url, 'team/race', 'v1', image.manifest), env.mirror.mirror.hosted.collect()]);
    if (push.status === 201) {
      for (const digest of digestsOf(image)) expect(stored(digest), digest).toBe(true);
    } else {
      expect(push.status).toBe(400);
      expect((await call(`${env.mirror.url}/v2/team/race/manifests/v1`)).status).toBe(404);
    }
  });

  it('expired upload sessions go with their bytes', async () => {
    env = await startHosted({ config: { hosted: { uploadExpirySeconds: 60, gc: { intervalSeconds: 0, graceSeconds: 0 } } } });
    const upload = await openUpload(env.mirror.url, 'team/expiring');
    await call(upload, { method: 'PATCH', body: 'some bytes' });
    const { uploads } = env.mirror.mirror.metadata;
    const id = /uploads\/([0-9a-f-]{36})/.exec(upload)![1]!;
    const session = (await uploads.get(id))!;
    await uploads.put({ ...session, updatedAt: Date.now() - 120_000 });
    const report = await env.mirror.mirror.hosted.collect();
    expect(report.uploadsExpired).toBe(1);
    expect((await call(upload)).status).toBe(404);
  });
});

/** The image's manifest with other layers (the same config). */
function rebuilt(image: TestImage, layers: Array<{ mediaType: string; digest: string; size: number }>): Buffer {
  const document = JSON.parse(image.manifest.bytes.toString()) as Record<string, unknown>;
  document.layers = layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size }));
  return Buffer.from(JSON.stringify(document));
}
