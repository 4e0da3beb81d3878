/**
 * The pull-through blob service over a content store whose writers cannot be followed while
 * they grow (the in-memory store here; object storage later): clients of a fill wait for its
 * commit and are then served the store's own bodies (streams, already cut to their range), from
 * one upstream GET, with the repository linked by the fill. The upstream is the
 * fake registry on a real socket.
 */
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseRangeHeader } from '../../src/domain/byte-range.js';
import { parseDigest } from '../../src/domain/digest.js';
import { proxiedTarget } from '../../src/domain/target.js';
import { sha256 } from '../helpers/http.js';
import { useProxyBlobsOverFake } from '../helpers/proxy-blobs-over-fake.js';
import { makeImage, pushImage } from '../helpers/test-images.js';

const start = useProxyBlobsOverFake();

async function read(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('blobs over a store without followers', () => {
  it('joiners wait for the commit, then get stream bodies cut to their range, from one upstream GET', async () => {
    const { fake, metadata, budget, blobs } = await start();
    const image = makeImage({ layers: [300_000], seed: 'no-followers' });
    pushImage(fake, 'library/app', 'v1', image);
    const layer = image.layers[0]!;
    const target = proxiedTarget('docker.io', 'library/app');
    const digest = parseDigest(layer.digest);

    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 1024 * 1024, times: 1 });
    const answers = await Promise.all([blobs.blob(target, digest), blobs.blob(target, digest), blobs.blob(target, digest, parseRangeHeader('bytes=100-199'))]);
    expect(answers.map((answer) => answer.origin).sort()).toEqual(['joined', 'joined', 'upstream']);
    for (const answer of answers) expect(answer.body.kind).toBe('stream');
    const bodies = await Promise.all(answers.map((answer) => (answer.body.kind === 'stream' ? read(answer.body.stream) : Buffer.alloc(0))));
    expect(sha256(bodies[0]!)).toBe(layer.digest);
    expect(sha256(bodies[1]!)).toBe(layer.digest);
    expect(bodies[2]!.equals(layer.bytes.subarray(100, 200))).toBe(true);
    expect(answers[2]!.range).toEqual({ start: 100, end: 199 });
    for (const answer of answers) answer.release();
    expect(fake.count({ method: 'GET', pathIncludes: '/blobs/' })).toBe(1);
    expect(await metadata.links.repositories(layer.digest, 10)).toEqual(['docker.io/library/app']);
    expect((await blobs.blob(target, digest)).origin).toBe('cache');
    await budget.close();
  });
});
