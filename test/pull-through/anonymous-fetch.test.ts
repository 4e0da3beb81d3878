/**
 * A client that did not authenticate asks for a blob of a repository whose verdict the mirror
 * does not know (issue 16): the miss is fetched without the mirror's credentials, and the
 * upstream serving it so is the anonymous probe. One anonymous token and one GET before the
 * first byte, where a probe beside a fetch with credentials cost two tokens, a HEAD and a GET;
 * a refusal is a refused probe, and nothing is fetched with the mirror's credentials for it.
 * Upstream: the fake registry with bearer tokens, `testuser/` private, user alice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/domain/digest.js';
import { AnonymousAccessRefusedError } from '../../src/domain/errors.js';
import { proxiedTarget } from '../../src/domain/target.js';
import type { BlobAnswer } from '../../src/pull-through/registry-service.js';
import { startFakeRegistry, type FakeRegistry, type FakeRegistryOptions } from '../helpers/fake-registry.js';
import { get, sha256 } from '../helpers/http.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { useProxyBlobsOverFake } from '../helpers/proxy-blobs-over-fake.js';
import { makeImage, pushImage } from '../helpers/test-images.js';

const PUBLIC = 'library/alpine';
const PRIVATE = 'testuser/private';
const CREDENTIALS = { username: 'alice', password: 'upstream-pw' };

const WITH_PRIVATE_REPOSITORIES: FakeRegistryOptions = { auth: 'bearer', users: { alice: CREDENTIALS.password }, privatePrefixes: ['testuser/'] };

/** Token requests for pulls from `repo`, split by whether they carried the mirror's credentials. */
function tokensFor(fake: FakeRegistry, repo: string): { anonymous: number; withCredentials: number } {
  const asked = fake.requests.filter((record) => record.server === 'token' && record.query.includes(encodeURIComponent(`repository:${repo}:pull`)));
  return { anonymous: asked.filter((record) => record.headers.authorization === undefined).length, withCredentials: asked.filter((record) => record.headers.authorization !== undefined).length };
}

/** `METHOD status` of every registry request for the blob. */
function blobRequests(fake: FakeRegistry, digest: string): string[] {
  return fake.requests.filter((record) => record.server === 'registry' && record.path.endsWith(`/blobs/${digest}`)).map((record) => `${record.method} ${record.status}`);
}

describe('a blob of a repository with no verdict yet, for a client that did not authenticate', () => {
  let fake: FakeRegistry;
  let mirror: MirrorUnderTest;
  const publicImage = makeImage({ layers: [40_000], seed: 'anonymous-fetch-public' });
  const privateImage = makeImage({ layers: [30_000], seed: 'anonymous-fetch-private' });

  beforeAll(async () => {
    fake = await startFakeRegistry(WITH_PRIVATE_REPOSITORIES);
    pushImage(fake, PUBLIC, 'latest', publicImage);
    pushImage(fake, PRIVATE, 'v1', privateImage);
    mirror = await startMirror({ upstreams: { 'docker.io': { url: fake.url, ...CREDENTIALS, tokenRealms: [new URL(fake.tokenUrl).host] } } });
    // As `serve` does at start: the first miss then asks for its token at once.
    await mirror.mirror.learnUpstreamChallenges();
  });
  afterAll(async () => {
    await mirror?.stop();
    await fake?.close();
  });

  it('is fetched with one anonymous token and one GET, no HEAD, no token with credentials; the next blob of the repository is fetched with them', async () => {
    const layer = publicImage.layers[0]!;
    const response = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
    expect(response.status).toBe(200);
    expect(sha256(response.body)).toBe(layer.digest);
    expect(blobRequests(fake, layer.digest)).toEqual(['GET 200']);
    expect(tokensFor(fake, PUBLIC)).toEqual({ anonymous: 1, withCredentials: 0 });

    // The repository is known readable now: the config comes through the mirror's credentials, unprobed.
    const config = publicImage.config;
    const second = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${config.digest}`);
    expect(second.status).toBe(200);
    expect(sha256(second.body)).toBe(config.digest);
    expect(blobRequests(fake, config.digest)).toEqual(['GET 200']);
    expect(tokensFor(fake, PUBLIC)).toEqual({ anonymous: 1, withCredentials: 1 });
  });

  it('of a private repository is NAME_UNKNOWN, without any request carrying the mirror\'s credentials, and the refusal is remembered', async () => {
    const layer = privateImage.layers[0]!;
    const response = await get(`${mirror.url}/v2/${PRIVATE}/blobs/${layer.digest}`);
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body.toString()).errors[0].code).toBe('NAME_UNKNOWN');
    // A refused token is not offered twice: a fresh one is asked for once (upstream-registry.ts).
    expect(tokensFor(fake, PRIVATE)).toEqual({ anonymous: 2, withCredentials: 0 });
    expect(blobRequests(fake, layer.digest)).toEqual(['GET 401', 'GET 401']);

    const before = fake.requests.length;
    const again = await get(`${mirror.url}/v2/${PRIVATE}/blobs/${layer.digest}`);
    expect(again.status).toBe(404);
    expect(JSON.parse(again.body.toString()).errors[0].code).toBe('NAME_UNKNOWN');
    expect(fake.requests.length, 'upstream requests for the second ask').toBe(before);
  });

  it('answered 403 by the registry itself is a refused probe too', async () => {
    const image = makeImage({ layers: [10_000], seed: 'anonymous-fetch-403' });
    pushImage(fake, 'library/denied', 'latest', image);
    const layer = image.layers[0]!;
    fake.setFault('blob', { status: 403, times: 1 });
    const response = await get(`${mirror.url}/v2/library/denied/blobs/${layer.digest}`);
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body.toString()).errors[0].code).toBe('NAME_UNKNOWN');
    expect(blobRequests(fake, layer.digest)).toEqual(['GET 403']);
    expect(tokensFor(fake, 'library/denied').withCredentials).toBe(0);
  });
});

describe('a fetch without credentials sent to the registry\'s storage', () => {
  it('refused there (a 403 from the CDN after the registry\'s redirect) is the upstream\'s fault, not a refused repository', async () => {
    const fake = await startFakeRegistry({ auth: 'bearer', users: { alice: CREDENTIALS.password }, redirectBlobsToCdn: true });
    const image = makeImage({ layers: [20_000], seed: 'anonymous-fetch-cdn' });
    pushImage(fake, PUBLIC, 'latest', image);
    const layer = image.layers[0]!;
    const upstream = { url: fake.url, ...CREDENTIALS, tokenRealms: [new URL(fake.tokenUrl).host], redirectHosts: [new URL(fake.cdnUrl).host] };
    const mirror = await startMirror({ upstreams: { 'docker.io': upstream } });
    try {
      await mirror.mirror.learnUpstreamChallenges();
      fake.setFault('blob', { status: 403, times: 1 });
      const refused = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
      expect(refused.status).not.toBe(200);
      expect(JSON.parse(refused.body.toString()).errors[0].code).not.toBe('NAME_UNKNOWN');
      // The registry let the anonymous client in (its redirect): the repository was not recorded as refused.
      const served = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
      expect(served.status).toBe(200);
      expect(sha256(served.body)).toBe(layer.digest);
    } finally {
      await mirror.close();
      await fake.close();
    }
  });
});

describe('a fetch without credentials that the upstream refuses', () => {
  const start = useProxyBlobsOverFake();

  it('fails the client it was made for; a client with credentials that joined it fetches again, with them', async () => {
    const { fake, upstream, budget, downloads, blobs } = await start({ fake: WITH_PRIVATE_REPOSITORIES, credentials: CREDENTIALS });
    const image = makeImage({ layers: [50_000], seed: 'anonymous-fetch-joiner' });
    pushImage(fake, PRIVATE, 'v1', image);
    const layer = image.layers[0]!;
    const target = proxiedTarget('docker.io', PRIVATE);
    const digest = parseDigest(layer.digest);
    await upstream.learnChallenge();

    const [anonymous, withCredentials] = await Promise.allSettled([blobs.blob(target, digest, undefined, { withoutCredentials: true }), blobs.blob(target, digest)]);
    expect(anonymous.status === 'rejected' && anonymous.reason).toBeInstanceOf(AnonymousAccessRefusedError);
    expect(withCredentials.status).toBe('fulfilled');
    const answer = (withCredentials as PromiseFulfilledResult<BlobAnswer>).value;
    expect(answer.anonymous).toBe(false);
    await downloads.running(digest)?.settled;
    expect(await budget.lookup(layer.digest)).toBe(layer.bytes.length);
    // The anonymous GET was refused; the joiner's own GET, with a token for alice, was served.
    expect(blobRequests(fake, layer.digest)).toEqual(['GET 401', 'GET 401', 'GET 200']);
    expect(tokensFor(fake, PRIVATE)).toEqual({ anonymous: 2, withCredentials: 1 });
    answer.release();
  });
});
