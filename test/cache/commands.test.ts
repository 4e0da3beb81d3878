/** `registry-mirror verify`, `prune` and `stats` on a cache filled by the real mirror. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneCache } from '../../src/cli/prune.js';
import { collectStats } from '../../src/cli/stats.js';
import { parseMirrorConfig } from '../../src/config/mirror-config.js';
import { BlobStore } from '../../src/store/blob-store.js';
import { StorePaths } from '../../src/store/store-paths.js';
import { verifyStore } from '../../src/store/verify-store.js';
import type { TestImage } from '../helpers/test-images.js';
import { type CacheBed, MiB, pullImage, pushTestImage, startCacheBed } from './cache-fixture.js';

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  return run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: PROJECT_ROOT, timeout: 20_000 }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code?: number; stdout?: string }) => ({ code: error.code ?? -1, stdout: error.stdout ?? '' }),
  );
}

const blobPath = (cacheDir: string, digest: string) => path.join(cacheDir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
const manifestPath = (cacheDir: string, digest: string) => path.join(cacheDir, 'manifests', 'sha256', digest.slice(7, 9), digest.slice(7));

describe('cache commands', () => {
  let bed: CacheBed | undefined;
  let workDir: string | undefined;
  let images: Record<string, TestImage>;
  afterEach(async () => {
    await bed?.close();
    bed = undefined;
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** Two images pulled (a twice: its second pull all hits), mirror stopped so counters are flushed. */
  async function filledCache(): Promise<{ cacheDir: string; configFile: string }> {
    bed = await startCacheBed({ cache: { maxBytes: 64 * MiB } });
    images = {
      a: pushTestImage(bed.fake, 'library/a', 'v1', [MiB, MiB], 'cmd-a'),
      b: pushTestImage(bed.fake, 'library/b', 'v1', [MiB], 'cmd-b'),
    };
    await pullImage(bed.mirror.url, 'library/a', 'v1', images.a!);
    await pullImage(bed.mirror.url, 'library/a', 'v1', images.a!);
    await pullImage(bed.mirror.url, 'library/b', 'v1', images.b!);
    await bed.stop();
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-cmd-'));
    const configFile = path.join(workDir, 'mirror.config.json');
    await writeFile(configFile, JSON.stringify({ cache: { dir: bed.mirror.cacheDir, maxBytes: '64MiB' }, upstreams: { 'docker.io': { url: bed.fake.url } } }));
    return { cacheDir: bed.mirror.cacheDir, configFile };
  }

  it('stats: sizes, counts, hit ratio and top repositories persisted by the server', async () => {
    const { cacheDir } = await filledCache();
    const config = parseMirrorConfig({ cache: { dir: cacheDir, maxBytes: '64MiB' }, upstreams: { 'docker.io': { url: bed!.fake.url } } });
    const stats = await collectStats(config);
    expect(stats.blobs.count).toBe(5);
    expect(stats.blobs.bytes).toBe(3 * MiB + images.a!.config.size + images.b!.config.size);
    expect(stats.manifests.count).toBe(2);
    expect(stats.tags).toBe(2);
    expect(stats.repositories).toBe(2);
    // a: 1 manifest + 3 blobs missed, then the same 4 hit; b: 3 missed.
    expect(stats.usage.totals).toEqual({ pulls: 3, hits: 4, misses: 7 });
    expect(stats.usage.hitRatio).toBeCloseTo(4 / 11);
    expect(stats.topRepositories.map((entry) => [entry.repository, entry.pulls])).toEqual([['docker.io/library/a', 2], ['docker.io/library/b', 1]]);
  });

  it('verify: removes blobs and manifests that do not match their digest, exit 1; then 0', async () => {
    const { cacheDir, configFile } = await filledCache();
    const corruptLayer = images.a!.layers[0]!;
    await writeFile(blobPath(cacheDir, corruptLayer.digest), Buffer.alloc(corruptLayer.size, 1));
    await writeFile(manifestPath(cacheDir, images.b!.manifest.digest), '{"schemaVersion":2}');

    const report = await verifyStore(new BlobStore(new StorePaths(cacheDir)));
    expect(report.blobs.checked).toBe(5);
    expect(report.blobs.removed).toEqual([corruptLayer.digest]);
    expect(report.manifests.removed).toEqual([images.b!.manifest.digest]);
    expect(existsSync(blobPath(cacheDir, corruptLayer.digest))).toBe(false);
    expect(existsSync(`${manifestPath(cacheDir, images.b!.manifest.digest)}.type`)).toBe(false);
    expect(existsSync(blobPath(cacheDir, images.a!.layers[1]!.digest))).toBe(true);

    await writeFile(blobPath(cacheDir, images.a!.layers[1]!.digest), 'rot');
    const failing = await cli(['verify', '--config', configFile]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/removed 1 corrupt blobs and 0 corrupt manifests/);
    const clean = await cli(['verify', '--config', configFile]);
    expect(clean.code).toBe(0);
  });

  it('prune: evicts least recently used blobs (by mtime) until the rest fits', async () => {
    const { cacheDir, configFile } = await filledCache();
    const a = images.a!;
    const b = images.b!;
    const now = Date.now() / 1000;
    // b was used long ago, a recently: b's blobs go first.
    for (const blob of [b.config, ...b.layers]) await utimes(blobPath(cacheDir, blob.digest), now - 7200, now - 7200);
    for (const blob of [a.config, ...a.layers]) await utimes(blobPath(cacheDir, blob.digest), now - 60, now - 60);
    const report = await pruneCache(cacheDir, 2.5 * MiB);
    expect(report.evicted).toBe(2);
    expect(report.remainingBytes).toBeLessThanOrEqual(2.5 * MiB);
    expect([b.config, ...b.layers].some((blob) => existsSync(blobPath(cacheDir, blob.digest)))).toBe(false);
    expect([a.config, ...a.layers].every((blob) => existsSync(blobPath(cacheDir, blob.digest)))).toBe(true);

    const viaCli = await cli(['prune', '--max-bytes', '1MiB', '--config', configFile]);
    expect(viaCli.code).toBe(0);
    expect(viaCli.stdout).toMatch(/^evicted 2 blobs/);
    const stats = await cli(['stats', '--json', '--config', configFile]);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout).blobs.count).toBe(1);
  });
});
