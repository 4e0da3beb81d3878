/**
 * The benchmark's push client (test/bench/push-client.ts) against a real registry:2, on small
 * blobs, so a broken client is caught here rather than by a 1 GiB benchmark run: monolithic and
 * chunked uploads land with the right digest and size, the Range after each PATCH is checked,
 * and an image push ends with the manifest digest the client computed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceMissing } from '../helpers/required-services.js';
import { buildImage, writeRandomBlob } from './bench-images.js';
import { assertStored, pushChunked, pushImage, pushMonolithic } from './push-client.js';
import { PUSH_TARGETS, REGISTRY2, type PushTarget } from './push-targets.js';

const registry2 = PUSH_TARGETS.find((kind) => kind.name === REGISTRY2)!;
let dir: string;
let target: PushTarget | undefined;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'registry-mirror-push-client-'));
  if (registry2.available()) target = await registry2.start(join(dir, 'registry'));
});

afterAll(async () => {
  agent.destroy();
  await target?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(serviceMissing(!registry2.available(), 'docker-registry is not installed (apt-get install docker-registry)'))('bench push client against registry:2', () => {
  it('monolithic upload: the blob is stored with its size', async () => {
    const blob = await writeRandomBlob(join(dir, 'seed'), 'mono', 300_001);
    await pushMonolithic(target!.url, 'bench/mono', blob, agent);
    await assertStored(target!.url, 'bench/mono', blob, agent);
  });

  it('chunked upload: one PATCH per chunk (the last one short), Range checked, then the closing PUT', async () => {
    const blob = await writeRandomBlob(join(dir, 'seed'), 'chunked', 250_000);
    expect(await pushChunked(target!.url, 'bench/chunked', blob, 64 * 1024, agent)).toBe(4);
    await assertStored(target!.url, 'bench/chunked', blob, agent);
  });

  it('a wrong digest is refused: the client throws instead of reporting a number', async () => {
    const blob = await writeRandomBlob(join(dir, 'seed'), 'wrong', 1000);
    await expect(pushMonolithic(target!.url, 'bench/wrong', { ...blob, digest: `sha256:${'0'.repeat(64)}` }, agent)).rejects.toThrow(/expected 201, got 400/);
  });

  it('image push: HEAD, upload, manifest with the expected digest; a second push uploads nothing', async () => {
    const image = await buildImage(join(dir, 'seed'), 'bench/image', 'v1', [1000, 20_000, 3]);
    expect(await pushImage(target!.url, 'bench/image', image, 2, agent)).toBe(4);
    for (const blob of [image.config, ...image.layers]) await assertStored(target!.url, 'bench/image', blob, agent);
    expect(await pushImage(target!.url, 'bench/image', image, 2, agent)).toBe(0);
  });
});
