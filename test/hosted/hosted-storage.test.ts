/**
 * Storage rules of hosted content (issue 14 "Storage rules"): one copy per digest whatever its
 * origin, hosted blobs and cached blobs a hosted manifest references never evicted, the cache
 * budget counting only evictable bytes, hosted bytes shown apart in /api/status and /metrics,
 * and hosted blobs sent the way cached ones are (sendfile(2) where the addon is built).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sendfileAddon } from '../../src/http/sendfile-addon.js';
import { sha256 } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage, seededBytes } from '../helpers/test-images.js';
import { call, header, pushBlob, pushImageTo, putManifest, startHosted, type HostedSetup } from './hosted-fixture.js';

const KiB = 1024;
let env: HostedSetup | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await env?.close();
  env = undefined;
});

function storedFiles(cacheDir: string): string[] {
  const root = path.join(cacheDir, 'blobs', 'sha256');
  return readdirSync(root).flatMap((fanout) => readdirSync(path.join(root, fanout)).map((name) => `sha256:${name}`));
}

async function status(setup: HostedSetup): Promise<{ cache: { bytes: number }; hosted: { bytes: number } }> {
  return JSON.parse((await call(setup.url('/api/status'))).body.toString()) as { cache: { bytes: number }; hosted: { bytes: number } };
}

describe('hosted content in the shared store', () => {
  it('a layer cached from the upstream and the same layer pushed are one file and one index record', async () => {
    env = await startHosted();
    const image = makeImage({ layers: [20 * KiB], seed: 'one-copy' });
    pushImage(env.upstream, 'library/alpine', '3.20', image);
    const layer = image.layers[0]!;
    expect((await call(env.url(`/v2/library/alpine/blobs/${layer.digest}`))).body.equals(layer.bytes)).toBe(true);
    await fillsSettled(env.mirror);
    await pushBlob(env.mirror.url, 'team/app', layer.bytes);
    expect(storedFiles(env.mirror.cacheDir).filter((digest) => digest === layer.digest)).toHaveLength(1);
    const record = await env.mirror.mirror.metadata.blobs.get(layer.digest);
    expect(record).toMatchObject({ size: layer.size, retained: true });
  });

  it('hosted bytes are retained: outside the budget, shown apart in /api/status and /metrics', async () => {
    env = await startHosted();
    const cached = makeImage({ layers: [30 * KiB], seed: 'budget-cached' });
    pushImage(env.upstream, 'library/alpine', '3.20', cached);
    await call(env.url(`/v2/library/alpine/blobs/${cached.layers[0]!.digest}`));
    // The client has the last byte once the digest is checked; the fill's budget reservation
    // becomes the blob's record just after.
    await fillsSettled(env.mirror);
    const pushed = seededBytes(50 * KiB, 'budget-pushed');
    await pushBlob(env.mirror.url, 'team/app', pushed);
    const { budget } = env.mirror.mirror;
    await budget.refresh();
    expect(budget.totalBytes).toBe(30 * KiB);
    expect(budget.retainedBytes).toBe(50 * KiB);
    const report = await status(env);
    expect(report.cache.bytes).toBe(30 * KiB);
    expect(report.hosted.bytes).toBe(50 * KiB);
    expect((await call(env.url('/metrics'))).body.toString()).toMatch(/^registry_mirror_hosted_bytes 51200$/m);
  });

  it('cached blobs a hosted manifest references are never evicted; the rest of the cache is', async () => {
    // Fills claim budget in steps of at least 64 KiB (eviction/reservation.ts): room for the base layer and a fill.
    env = await startHosted({ config: { cache: { maxBytes: 300 * KiB } } });
    const base = makeImage({ layers: [40 * KiB], seed: 'evict-base' });
    pushImage(env.upstream, 'library/base', 'v1', base);
    const baseLayer = base.layers[0]!;
    await call(env.url(`/v2/library/base/blobs/${baseLayer.digest}`));
    await call(env.url(`/v2/library/base/blobs/${base.config.digest}`));
    // The client has the last byte once the digest is checked; the fill links the repository and
    // then publishes the blob a moment later. A mount in between is a plain upload (202), so wait
    // for the fills to settle, not for the links.
    await fillsSettled(env.mirror);
    // A hosted image built on the cached base layer: mounted from the proxied repository.
    const mounted = await call(env.url(`/v2/team/app/blobs/uploads/?mount=${baseLayer.digest}&from=library/base`), { method: 'POST' });
    expect(mounted.status).toBe(201);
    expect((await call(env.url(`/v2/team/app/blobs/uploads/?mount=${base.config.digest}&from=library/base`), { method: 'POST' })).status).toBe(201);
    expect((await putManifest(env.mirror.url, 'team/app', 'v1', base.manifest)).status).toBe(201);
    // Fill the cache well past its budget with other cached blobs.
    for (let index = 0; index < 4; index++) {
      const filler = makeImage({ layers: [100 * KiB], seed: `evict-filler-${index}` });
      pushImage(env.upstream, `library/filler${index}`, 'v1', filler);
      await call(env.url(`/v2/library/filler${index}/blobs/${filler.layers[0]!.digest}`));
    }
    await env.mirror.mirror.budget.idle();
    expect(await env.mirror.mirror.metadata.blobs.get(baseLayer.digest)).toMatchObject({ retained: true });
    expect(storedFiles(env.mirror.cacheDir)).toContain(baseLayer.digest);
    expect((await call(env.url(`/v2/team/app/blobs/${baseLayer.digest}`))).body.equals(baseLayer.bytes)).toBe(true);
    expect(env.mirror.mirror.budget.totalBytes).toBeLessThanOrEqual(300 * KiB);
    expect(env.mirror.mirror.budget.retainedBytes).toBe(40 * KiB + base.config.size + base.manifest.size);
    const evictions = (JSON.parse((await call(env.url('/api/status'))).body.toString()) as { cache: { evictions: number } }).cache.evictions;
    expect(evictions, 'cached fillers were evicted meanwhile').toBeGreaterThan(0);
  });
});

describe('hosted blobs are sent as cached ones are', () => {
  it.runIf(sendfileAddon !== undefined)('by sendfile(2): whole and by range, with the registry headers', async () => {
    env = await startHosted();
    const bytes = seededBytes(5 * 1024 * KiB + 3, 'hosted-sendfile');
    const digest = await pushBlob(env.mirror.url, 'team/app', bytes);
    const sent = vi.spyOn(sendfileAddon!, 'sendResident');
    const whole = await call(env.url(`/v2/team/app/blobs/${digest}`));
    expect(whole.body.equals(bytes)).toBe(true);
    expect([header(whole, 'content-length'), header(whole, 'docker-content-digest'), header(whole, 'content-type')]).toEqual([String(bytes.length), digest, 'application/octet-stream']);
    const bySendfile = sent.mock.results.reduce((sum, result) => sum + Math.max(0, result.value as number), 0);
    expect(bySendfile).toBe(bytes.length);
    const ranged = await call(env.url(`/v2/team/app/blobs/${digest}`), { headers: { range: 'bytes=100-199' } });
    expect([ranged.status, header(ranged, 'content-range')]).toEqual([206, `bytes 100-199/${bytes.length}`]);
    expect(ranged.body.equals(bytes.subarray(100, 200))).toBe(true);
  });

  it('behind nginx (accel.redirectPrefix), hosted blobs go out as X-Accel-Redirect too', async () => {
    env = await startHosted({ config: { accel: { redirectPrefix: '/_registry_mirror_blobs/' } } });
    const bytes = Buffer.from('accel hosted blob');
    const digest = await pushBlob(env.mirror.url, 'team/app', bytes);
    const response = await call(env.url(`/v2/team/app/blobs/${digest}`), { headers: { 'x-registry-mirror-accel-prefix': '/_registry_mirror_blobs/' } });
    expect(header(response, 'x-accel-redirect')).toBe(`/_registry_mirror_blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`);
    expect(sha256(bytes)).toBe(digest);
  });
});
