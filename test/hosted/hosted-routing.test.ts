/**
 * Hosted next to proxied (issue 14 "Routing"): which names are hosted (hosted.repositories
 * globs, or every unprefixed name with "defaultUpstream": null), that a name is never both, that
 * a write to a proxied name is refused naming the hosted patterns and never reaches the
 * upstream, and that 405 + Allow is right for every endpoint and both kinds of repository.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NameInvalidError, NameUnknownError } from '../../src/domain/errors.js';
import { hostedTarget, proxiedTarget } from '../../src/domain/target.js';
import { RepositoryPatterns } from '../../src/hosted/repository-patterns.js';
import { UpstreamRouter } from '../../src/upstream/upstream-router.js';
import { sha256 } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { call, errorCodes, header, pushImageTo, startHosted, upstreamWrites, type HostedSetup } from './hosted-fixture.js';

const UPSTREAMS = ['docker.io', 'gcr.io', 'localhost:5000'];

describe('UpstreamRouter with hosted names', () => {
  const router = new UpstreamRouter(UPSTREAMS, 'docker.io', RepositoryPatterns.parse(['team/**', 'my-image'], 'hosted.repositories'));
  const registryOnly = new UpstreamRouter(['docker.io'], null);

  it.each([
    ['team/app', hostedTarget('team/app')],
    ['team', hostedTarget('team')],
    ['team/a/b', hostedTarget('team/a/b')],
    ['my-image', hostedTarget('my-image')],
    ['my-image2', proxiedTarget('docker.io', 'library/my-image2')],
    ['alpine', proxiedTarget('docker.io', 'library/alpine')],
    ['teams/app', proxiedTarget('docker.io', 'teams/app')],
    ['gcr.io/team/app', proxiedTarget('gcr.io', 'team/app')],
    ['docker.io/team/app', proxiedTarget('docker.io', 'team/app')],
  ])('%s -> %j', (name, target) => {
    expect(router.target(name, undefined)).toEqual(target);
  });

  it('?ns= always names an upstream, whatever the patterns say', () => {
    expect(router.target('team/app', 'gcr.io')).toEqual(proxiedTarget('gcr.io', 'team/app'));
  });

  it('with "defaultUpstream": null every name without a configured registry prefix is hosted', () => {
    expect(registryOnly.target('my-image', undefined)).toEqual(hostedTarget('my-image'));
    expect(registryOnly.target('team/app', undefined)).toEqual(hostedTarget('team/app'));
    expect(registryOnly.target('quay.io/coreos/etcd', undefined)).toEqual(hostedTarget('quay.io/coreos/etcd'));
    expect(registryOnly.target('docker.io/library/alpine', undefined)).toEqual(proxiedTarget('docker.io', 'library/alpine'));
    expect(() => registryOnly.target('Bad_Name', undefined)).toThrow(NameInvalidError);
  });

  it('route() (the tools: warm, import, export) refuses hosted names', () => {
    expect(() => router.route('team/app', undefined)).toThrow(NameUnknownError);
    expect(router.route('alpine', undefined)).toEqual(proxiedTarget('docker.io', 'library/alpine'));
  });

  it('targetOfKey reads catalog keys back: <upstream>/<name> is proxied, anything else hosted', () => {
    expect(router.targetOfKey('docker.io/library/alpine')).toEqual(proxiedTarget('docker.io', 'library/alpine'));
    expect(router.targetOfKey('localhost:5000/app')).toEqual(proxiedTarget('localhost:5000', 'app'));
    expect(router.targetOfKey('team/app')).toEqual(hostedTarget('team/app'));
  });
});

describe('hosted and proxied names on one mirror', () => {
  let env: HostedSetup;
  const cached = makeImage({ layers: [4000, 5000], seed: 'routing-cached' });
  const pushed = makeImage({ layers: [3000], seed: 'routing-pushed' });

  beforeAll(async () => {
    env = await startHosted();
    pushImage(env.upstream, 'library/alpine', '3.20', cached);
    pushImage(env.upstream, 'team/app', 'v1', makeImage({ layers: [10], seed: 'upstream-team-app' }));
  });
  afterAll(async () => {
    await env?.close();
  });

  it('a hosted name is served from local storage only: the upstream is never asked for it', async () => {
    env.upstream.resetCounts();
    expect((await call(env.url('/v2/team/app/manifests/v1'))).status).toBe(404);
    expect((await call(env.url('/v2/team/app/tags/list'))).status).toBe(404);
    expect((await call(env.url(`/v2/team/app/blobs/${cached.layers[0]!.digest}`))).status).toBe(404);
    expect(env.upstream.requests).toEqual([]);
  });

  it('writes to a proxied name: 405 naming the hosted patterns, and no request reaches the upstream', async () => {
    env.upstream.resetCounts();
    const writes: Array<[string, string]> = [
      ['POST', '/v2/library/alpine/blobs/uploads/'],
      ['POST', `/v2/library/alpine/blobs/uploads/?digest=${sha256(Buffer.from('x'))}`],
      ['POST', `/v2/library/alpine/blobs/uploads/?mount=${cached.layers[0]!.digest}&from=team/app`],
      ['PATCH', '/v2/library/alpine/blobs/uploads/00000000-0000-4000-8000-000000000000'],
      ['PUT', '/v2/library/alpine/manifests/3.20'],
      ['DELETE', '/v2/library/alpine/manifests/3.20'],
      ['DELETE', `/v2/library/alpine/blobs/${cached.layers[0]!.digest}`],
      ['PUT', '/v2/docker.io/library/alpine/manifests/3.20'],
      ['PUT', '/v2/alpine/manifests/3.20?ns=docker.io'],
    ];
    for (const [method, path] of writes) {
      const response = await call(env.url(path), { method, body: method === 'DELETE' ? undefined : 'x' });
      expect([response.status, errorCodes(response)], `${method} ${path}`).toEqual([405, ['UNSUPPORTED']]);
      expect(response.body.toString()).toContain('team/**');
    }
    expect(env.upstream.requests).toEqual([]);
  });

  it('405 and Allow are right for every endpoint and both kinds of repository', async () => {
    const digest = cached.layers[0]!.digest;
    const cases: Array<[string, string, string]> = [
      ['library/alpine', 'manifests/3.20', 'GET, HEAD'],
      ['library/alpine', `blobs/${digest}`, 'GET, HEAD'],
      ['library/alpine', 'tags/list', 'GET, HEAD'],
      ['library/alpine', `referrers/${digest}`, 'GET, HEAD'],
      ['library/alpine', 'blobs/uploads/', ''],
      ['library/alpine', 'blobs/uploads/00000000-0000-4000-8000-000000000000', ''],
      ['team/app', 'manifests/v1', 'GET, HEAD, PUT, DELETE'],
      ['team/app', `blobs/${digest}`, 'GET, HEAD, DELETE'],
      ['team/app', 'tags/list', 'GET, HEAD'],
      ['team/app', `referrers/${digest}`, 'GET, HEAD'],
      ['team/app', 'blobs/uploads/', 'POST'],
      ['team/app', 'blobs/uploads/00000000-0000-4000-8000-000000000000', 'GET, PATCH, PUT, DELETE'],
    ];
    for (const [name, tail, allow] of cases) {
      const response = await call(env.url(`/v2/${name}/${tail}`), { method: 'OPTIONS' });
      expect([response.status, errorCodes(response), header(response, 'allow')], `OPTIONS ${name}/${tail}`).toEqual([405, ['UNSUPPORTED'], allow]);
    }
  });

  it('library/alpine:3.20 pulls through byte-exact while team/app is pushed and pulled; the push never reaches the upstream', async () => {
    env.upstream.resetCounts();
    const [pull] = await Promise.all([
      call(env.url('/v2/library/alpine/manifests/3.20')),
      pushImageTo(env.mirror.url, 'team/app', 'v1', pushed),
    ]);
    expect(pull.body.equals(cached.manifest.bytes)).toBe(true);
    for (const layer of cached.layers) expect((await call(env.url(`/v2/library/alpine/blobs/${layer.digest}`))).body.equals(layer.bytes)).toBe(true);
    expect((await call(env.url('/v2/team/app/manifests/v1'))).body.equals(pushed.manifest.bytes)).toBe(true);
    expect((await call(env.url(`/v2/team/app/blobs/${pushed.layers[0]!.digest}`))).body.equals(pushed.layers[0]!.bytes)).toBe(true);
    expect(upstreamWrites(env.upstream)).toBe(0);
    expect(env.upstream.requests.filter((record) => record.path.includes('team/app'))).toEqual([]);
  });
});

describe('a registry-only mirror ("defaultUpstream": null)', () => {
  it('the seed workflow: push my-image:latest, pull it back; docker.io/... still pulls through', async () => {
    const env = await startHosted({ config: { defaultUpstream: null } });
    try {
      const image = makeImage({ layers: [1000], seed: 'registry-only' });
      await pushImageTo(env.mirror.url, 'my-image', 'latest', image);
      await pushImageTo(env.mirror.url, 'other/thing', 'latest', image);
      expect((await call(env.url('/v2/my-image/manifests/latest'))).body.equals(image.manifest.bytes)).toBe(true);
      pushImage(env.upstream, 'library/alpine', '3.20', image);
      expect((await call(env.url('/v2/docker.io/library/alpine/manifests/3.20'))).status).toBe(200);
      expect((await call(env.url('/v2/alpine/manifests/3.20'))).status, 'unprefixed names are hosted').toBe(404);
    } finally {
      await env.close();
    }
  });
});
