/**
 * A fill links the repository it came through, then publishes its blob
 * (pull-through/blob-download.ts). An anonymous client asking for that blob under the same
 * repository at any moment must be served without an anonymous upstream probe: the fill through
 * that very repository vouches for it. With manifest prefetch (issue 16) clients often arrive
 * while fills finish; each probe cost an extra upstream round trip (HEAD, 401, token, HEAD).
 * Linking after publishing left a window in which another worker of `serve` (or another replica)
 * found the blob published but unlinked, and probed.
 * Upstream: bearer tokens, `testuser/` private; the mirror holds alice's credentials.
 */
import { describe, expect, it } from 'vitest';
import type { FakeRegistry } from '../helpers/fake-registry.js';
import { fillThrough } from '../helpers/fill-through.js';
import { holdFirstCall, type HeldCall } from '../helpers/hold-first-call.js';
import { get, sha256 } from '../helpers/http.js';
import { fillsSettled, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage, type TestBlob } from '../helpers/test-images.js';
import { useCredentialedMirror } from './security-fixture.js';

const PUBLIC = 'library/alpine';
const PRIVATE = 'testuser/private';

const start = useCredentialedMirror();

/** Holds the first `links.add` for `digest` (the fill's) until the returned release is called; `reached` resolves when it is held. */
function holdLink(under: MirrorUnderTest, digest: string): HeldCall {
  return holdFirstCall(under.mirror.metadata.links, 'add', (_repository, linked) => linked === digest);
}

/** A public image on the upstream, its repository's verdict known (one probe, for the manifest): a blob's own check then probes nothing and links nothing. */
async function publicLayerWithKnownVerdict(seed: string): Promise<{ upstream: FakeRegistry; mirror: MirrorUnderTest; layer: TestBlob }> {
  const { upstream, mirror } = await start();
  const image = makeImage({ layers: [64 * 1024], seed });
  pushImage(upstream, PUBLIC, 'latest', image);
  expect((await get(`${mirror.url}/v2/${PUBLIC}/manifests/latest`, { accept: image.manifest.mediaType })).status).toBe(200);
  return { upstream, mirror, layer: image.layers[0]! };
}

/** Records, at each commit of a writer for `digest`, whether `repository` was linked to it then. */
function linkedAtCommit(under: MirrorUnderTest, repository: string, digest: string): boolean[] {
  const { content, metadata } = under.mirror;
  const writer = content.writer.bind(content);
  const seen: boolean[] = [];
  content.writer = async (options) => {
    const opened = await writer(options);
    const commit = opened.commit.bind(opened);
    opened.commit = async (expected, size) => {
      if (expected.value === digest) seen.push(await metadata.links.has(repository, digest));
      return commit(expected, size);
    };
    return opened;
  };
  return seen;
}

describe('a blob whose fill through the requested repository is recording its link', () => {
  it('is linked to that repository before it is published: no process or replica finds it unlinked and probes', async () => {
    const { mirror, layer } = await publicLayerWithKnownVerdict('link-before-publish');
    const seen = linkedAtCommit(mirror, `docker.io/${PUBLIC}`, layer.digest);
    const response = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
    expect(response.status).toBe(200);
    expect(sha256(response.body)).toBe(layer.digest);
    expect(seen).toEqual([true]);
  });

  it('bytes that fail the digest check take the link back', async () => {
    const { upstream, mirror, layer } = await publicLayerWithKnownVerdict('link-taken-back');
    upstream.setFault('blob', { mode: 'corrupt', times: 1 });
    // Cut short (never complete) or, at most, wrong bytes the client's own check refuses.
    const failed = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`).catch((error: Error) => error);
    if (!(failed instanceof Error)) expect(sha256(failed.body)).not.toBe(layer.digest);
    await fillsSettled(mirror);
    expect(await mirror.mirror.metadata.links.repositories(layer.digest, 10)).toEqual([]);
  });

  it('is served to an anonymous client without an anonymous upstream probe', async () => {
    const { upstream, mirror, layer } = await publicLayerWithKnownVerdict('link-window');
    const { reached, release } = holdLink(mirror, layer.digest);
    const first = get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
    await reached;
    upstream.resetCounts();
    // The fill holds the blob unpublished until its link is recorded: the second client joins it.
    const answered = get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    const second = await answered;
    expect(second.status).toBe(200);
    expect(sha256(second.body)).toBe(layer.digest);
    expect(upstream.count()).toBe(0);
    const firstResponse = await first;
    expect(firstResponse.status).toBe(200);
    expect(sha256(firstResponse.body)).toBe(layer.digest);
  });

  it('under another repository name it is still checked: a private fill vouches for nothing public', async () => {
    const { upstream, mirror } = await start();
    const image = makeImage({ layers: [64 * 1024], seed: 'link-window-private' });
    const layer = image.layers[0]!;
    pushImage(upstream, PRIVATE, 'v1', image);
    const visible = makeImage({ layers: [1000], seed: 'link-window-public' });
    pushImage(upstream, PUBLIC, 'latest', visible);
    expect((await get(`${mirror.url}/v2/${PUBLIC}/manifests/latest`, { accept: visible.manifest.mediaType })).status).toBe(200);

    // The mirror fills the private layer with its own credentials (as warm does), link held.
    const { reached, release } = holdLink(mirror, layer.digest);
    const filling = fillThrough(mirror.mirror, PRIVATE, layer.digest);
    await reached;
    const refused = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
    release();
    expect(refused.status).toBe(404);
    expect(JSON.parse(refused.body.toString()).errors[0].code).toBe('BLOB_UNKNOWN');
    expect(sha256(await filling)).toBe(layer.digest);
    await fillsSettled(mirror);
  });
});
