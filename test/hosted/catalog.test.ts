/**
 * GET /v2/_catalog: hosted repositories by name and cached ones under their registry prefix,
 * in code point order, paged by n and last with a Link, and only what the client may pull.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { basicAuth } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { startFakeRegistry } from '../helpers/fake-registry.js';
import { startMirror } from '../helpers/mirror-under-test.js';
import { call, errorCodes, header, pushImageTo, startHosted, type HostedSetup } from './hosted-fixture.js';

let env: HostedSetup | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

async function catalog(setup: HostedSetup, query = '', headers: Record<string, string> = {}): Promise<{ repositories: string[]; link?: string; status: number }> {
  const response = await call(setup.url(`/v2/_catalog${query}`), { headers });
  if (response.status !== 200) return { repositories: [], status: response.status };
  const link = header(response, 'link');
  return { status: 200, repositories: (JSON.parse(response.body.toString()) as { repositories: string[] }).repositories, ...(link ? { link } : {}) };
}

describe('GET /v2/_catalog', () => {
  it('lists hosted repositories and cached ones under their registry prefix, in order, paged with a Link', async () => {
    env = await startHosted();
    const image = makeImage({ layers: [10], seed: 'catalog' });
    for (const repository of ['team/b', 'team/a', 'my-image']) await pushImageTo(env.mirror.url, repository, 'v1', image);
    pushImage(env.upstream, 'library/alpine', '3.20', image);
    await call(env.url('/v2/library/alpine/manifests/3.20'));
    expect((await catalog(env)).repositories).toEqual(['docker.io/library/alpine', 'my-image', 'team/a', 'team/b']);
    const first = await catalog(env, '?n=3');
    expect(first.repositories).toEqual(['docker.io/library/alpine', 'my-image', 'team/a']);
    expect(first.link).toBe('</v2/_catalog?n=3&last=team%2Fa>; rel="next"');
    const second = await catalog(env, first.link!.slice(first.link!.indexOf('?'), first.link!.indexOf('>')));
    expect(second).toEqual({ status: 200, repositories: ['team/b'] });
    expect(await catalog(env, '?n=0')).toEqual({ status: 200, repositories: [] });
    expect((await catalog(env, '?n=x')).status).toBe(400);
    // The cached repository pulls by the name the catalog gives it.
    expect((await call(env.url('/v2/docker.io/library/alpine/manifests/3.20'))).status).toBe(200);
  });

  it('lists only what the client may pull (auth.access)', async () => {
    env = await startHosted({
      users: { alice: 'alice-secret', bob: 'bob-secret' },
      config: { auth: { access: [{ users: ['*'], repositories: ['team/shared/**'], actions: ['pull', 'push'] }, { users: ['alice'], repositories: ['team/alice/**'], actions: ['pull', 'push'] }] } },
    });
    const alice = { authorization: basicAuth('alice', 'alice-secret') };
    const bob = { authorization: basicAuth('bob', 'bob-secret') };
    const image = makeImage({ layers: [10], seed: 'catalog-access' });
    for (let index = 0; index < 5; index++) await pushImageTo(env.mirror.url, `team/alice/app${index}`, 'v1', image, alice);
    await pushImageTo(env.mirror.url, 'team/shared/base', 'v1', image, alice);
    expect((await catalog(env, '', alice)).repositories).toEqual(['team/alice/app0', 'team/alice/app1', 'team/alice/app2', 'team/alice/app3', 'team/alice/app4', 'team/shared/base']);
    expect((await catalog(env, '', bob)).repositories).toEqual(['team/shared/base']);
    expect(await catalog(env, '?n=1', bob)).toEqual({ status: 200, repositories: ['team/shared/base'] });
    const anonymous = await call(env.url('/v2/_catalog'));
    expect([anonymous.status, errorCodes(anonymous)]).toEqual([401, ['UNAUTHORIZED']]);
  });

  it('anonymous clients are not shown repositories of upstreams the mirror holds credentials for', async () => {
    const upstream = await startFakeRegistry({ auth: 'basic', users: { mirror: 'mirror-secret' } });
    const mirror = await startMirror({ upstreams: { 'docker.io': { url: upstream.url, username: 'mirror', password: 'mirror-secret' }, 'gcr.io': { url: upstream.url } }, hosted: { repositories: ['team/**'], allowAnonymousPush: true } });
    env = { mirror, upstream, url: (path) => `${mirror.url}${path}`, close: async () => { await mirror.close(); await upstream.close(); } };
    const image = makeImage({ layers: [10], seed: 'catalog-credentials' });
    pushImage(upstream, 'acme/private', 'v1', image);
    await pushImageTo(mirror.url, 'team/app', 'v1', image);
    // Cached through the mirror's credentials (recorded as it would be by an authenticated pull).
    await mirror.mirror.metadata.links.add('docker.io/acme/private', image.manifest.digest);
    await mirror.mirror.metadata.links.add('gcr.io/public/thing', image.manifest.digest);
    expect((await catalog(env)).repositories).toEqual(['gcr.io/public/thing', 'team/app']);
  });
});
