/** `registry-mirror verify`, `prune` and `stats` on a cache filled by the real mirror. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneCache } from '../../src/cli/prune.js';
import { collectStats } from '../../src/cli/stats.js';
import { openStores } from '../../src/compose.js';
import { parseMirrorConfig, type MirrorConfig } from '../../src/config/mirror-config.js';
import { parseDigest } from '../../src/domain/digest.js';
import { createLogger } from '../../src/log.js';
import { verifyContent } from '../../src/storage/verify-content.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
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

/** Where the filesystem content store keeps content (blobs and manifests alike): what `verify` guards against hands in. */
const contentPath = (cacheDir: string, digest: string) => path.join(cacheDir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));

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
  async function filledCache(): Promise<{ cacheDir: string; configFile: string; config: MirrorConfig }> {
    bed = await startCacheBed({ cache: { maxBytes: 64 * MiB } });
    images = {
      a: pushTestImage(bed.fake, 'library/a', 'v1', [MiB, MiB], 'cmd-a'),
      b: pushTestImage(bed.fake, 'library/b', 'v1', [MiB], 'cmd-b'),
    };
    await pullImage(bed.mirror.url, 'library/a', 'v1', images.a!);
    await fillsSettled(bed.mirror);
    await pullImage(bed.mirror.url, 'library/a', 'v1', images.a!);
    await pullImage(bed.mirror.url, 'library/b', 'v1', images.b!);
    await fillsSettled(bed.mirror);
    await bed.stop();
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-cmd-'));
    const configFile = path.join(workDir, 'mirror.config.json');
    const raw = { cache: { dir: bed.mirror.cacheDir, maxBytes: '64MiB' }, upstreams: { 'docker.io': { url: bed.fake.url } } };
    await writeFile(configFile, JSON.stringify(raw));
    return { cacheDir: bed.mirror.cacheDir, configFile, config: parseMirrorConfig(raw) };
  }

  it('stats: sizes, counts, hit ratio and top repositories persisted by the server', async () => {
    const { config } = await filledCache();
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
    const { cacheDir, configFile, config } = await filledCache();
    const corruptLayer = images.a!.layers[0]!;
    await writeFile(contentPath(cacheDir, corruptLayer.digest), Buffer.alloc(corruptLayer.size, 1));
    await writeFile(contentPath(cacheDir, images.b!.manifest.digest), '{"schemaVersion":2}');

    const stores = await openStores(config, createLogger('silent'));
    try {
      const report = await verifyContent(stores);
      expect(report.blobs.checked).toBe(5);
      expect(report.manifests.checked).toBe(2);
      expect(report.blobs.removed).toEqual([corruptLayer.digest]);
      expect(report.manifests.removed).toEqual([images.b!.manifest.digest]);
      expect(await stores.content.stat(parseDigest(corruptLayer.digest))).toBeUndefined();
      expect(await stores.metadata.blobs.get(corruptLayer.digest)).toBeUndefined();
      expect(await stores.metadata.manifests.get(images.b!.manifest.digest)).toBeUndefined();
      expect(await stores.content.stat(parseDigest(images.a!.layers[1]!.digest))).toBeDefined();
    } finally {
      await stores.close();
    }

    await writeFile(contentPath(cacheDir, images.a!.layers[1]!.digest), 'rot');
    const failing = await cli(['verify', '--config', configFile]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/removed 1 corrupt blobs and 0 corrupt manifests/);
    const clean = await cli(['verify', '--config', configFile]);
    expect(clean.code).toBe(0);
  });

  it('prune: evicts least recently used blobs (by the recency the server recorded) until the rest fits', async () => {
    const { cacheDir, configFile, config } = await filledCache();
    const a = images.a!;
    const b = images.b!;
    const now = Date.now();
    // b was used long ago, a recently: b's blobs go first.
    const stores = await openStores(config, createLogger('silent'));
    for (const blob of [b.config, ...b.layers]) await stores.metadata.blobs.put(blob.digest, blob.size, { usedAt: now - 7_200_000 });
    for (const blob of [a.config, ...a.layers]) await stores.metadata.blobs.put(blob.digest, blob.size, { usedAt: now - 60_000 });
    await stores.close();
    const report = await pruneCache(config, 2.5 * MiB);
    expect(report.evicted).toBe(2);
    expect(report.remainingBytes).toBeLessThanOrEqual(2.5 * MiB);
    expect([b.config, ...b.layers].some((blob) => existsSync(contentPath(cacheDir, blob.digest)))).toBe(false);
    expect([a.config, ...a.layers].every((blob) => existsSync(contentPath(cacheDir, blob.digest)))).toBe(true);

    const viaCli = await cli(['prune', '--max-bytes', '1MiB', '--config', configFile]);
    expect(viaCli.code).toBe(0);
    expect(viaCli.stdout).toMatch(/^evicted 2 blobs/);
    const stats = await cli(['stats', '--json', '--config', configFile]);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout).blobs.count).toBe(1);
  });
});
