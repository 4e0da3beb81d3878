/**
 * Shared set-up for the cache suites: a fake upstream without auth (so request counts are only
 * the content requests), the real mirror in front of it, and probes of the cache directory.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { type FakeRegistry, startFakeRegistry } from '../helpers/fake-registry.js';
import { get, sha256 } from '../helpers/http.js';
import { type MirrorUnderTest, type RawConfig, startMirror } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage, type TestImage } from '../helpers/test-images.js';

export const MiB = 2 ** 20;

export interface CacheBed {
  fake: FakeRegistry;
  mirror: MirrorUnderTest;
  /** Raw mirror config without `upstreams` and cache.dir, kept for restarts. */
  config: Omit<RawConfig, 'upstreams'>;
  restart(): Promise<void>;
  /** Stops the mirror, keeping its cache for inspection; close() then only cleans up. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startCacheBed(config: Omit<RawConfig, 'upstreams'> = {}): Promise<CacheBed> {
  const fake = await startFakeRegistry();
  const raw = () => ({ ...config, upstreams: { 'docker.io': { url: fake.url } } }) as RawConfig;
  let stopped = false;
  const bed: CacheBed = {
    fake,
    mirror: await startMirror(raw()),
    config,
    async restart() {
      await bed.mirror.stop();
      bed.mirror = await startMirror(raw(), { cacheDir: bed.mirror.cacheDir });
    },
    async stop() {
      stopped = true;
      await bed.mirror.stop();
    },
    async close() {
      if (stopped) await rm(bed.mirror.cacheDir, { recursive: true, force: true });
      else await bed.mirror.close();
      await fake.close();
    },
  };
  return bed;
}

export function pushTestImage(fake: FakeRegistry, repo: string, tag: string, layers: number[], seed: string): TestImage {
  const image = makeImage({ layers, seed });
  pushImage(fake, repo, tag, image);
  return image;
}

/** Pulls like a client: manifest by tag, then config and layers; checks every byte. */
export async function pullImage(mirrorUrl: string, repo: string, tag: string, image: TestImage): Promise<void> {
  const manifest = await get(`${mirrorUrl}/v2/${repo}/manifests/${tag}`, { accept: image.manifest.mediaType });
  expect(manifest.status, `manifest ${repo}:${tag}`).toBe(200);
  expect(sha256(manifest.body)).toBe(image.manifest.digest);
  for (const blob of [image.config, ...image.layers]) {
    const response = await get(`${mirrorUrl}/v2/${repo}/blobs/${blob.digest}`);
    expect(response.status, `blob ${blob.digest} of ${repo}:${tag}`).toBe(200);
    expect(sha256(response.body)).toBe(blob.digest);
  }
}

/** Bytes of every file under `dir`, recursively (what `du -b` would count for the files). */
export async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await bytesUnder(full);
    else if (entry.isFile()) total += (await stat(full)).size;
  }
  return total;
}

export async function filesUnder(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** Temp files of writers under way, whichever process they belong to (tmp/<pid>-<start>/<id>). */
export async function tempFiles(cacheDir: string): Promise<string[]> {
  const entries = await readdir(path.join(cacheDir, 'tmp'), { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/** Upstream requests that fetched or probed content (manifests and blobs). */
export { sha256 };

export function contentRequests(fake: FakeRegistry): number {
  return fake.requests.filter((record) => record.path.includes('/manifests/') || record.path.includes('/blobs/')).length;
}
