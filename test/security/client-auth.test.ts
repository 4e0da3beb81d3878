/**
 * auth.htpasswd: Basic authentication of clients with a proper challenge, as docker login,
 * containerd and skopeo expect; probes stay open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/mirror-config.js';
import { Htpasswd, parseHtpasswd } from '../../src/http/htpasswd.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { basicAuth, get, head, sha256 } from '../helpers/http.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { tempDir, writeHtpasswd, type TempDir } from './security-fixture.js';

const CHALLENGE = /^Basic realm="registry-mirror"/;

describe('client auth (auth.htpasswd)', () => {
  let dir: TempDir;
  let upstream: FakeRegistry;
  let mirror: MirrorUnderTest;
  const image = makeImage({ layers: [2048], seed: 'client-auth' });

  beforeAll(async () => {
    dir = await tempDir('mirror-auth-');
    await writeHtpasswd(dir.file('htpasswd'), { alice: 'correct horse', bob: 'battery staple' });
    upstream = await startFakeRegistry();
    pushImage(upstream, 'library/alpine', 'latest', image);
    mirror = await startMirror({ upstreams: { 'docker.io': { url: upstream.url } }, auth: { htpasswd: dir.file('htpasswd') } });
  });
  afterAll(async () => {
    await mirror?.close();
    await upstream?.close();
    await dir?.remove();
  });

  it('answers /v2/ without credentials with 401, a Basic challenge and an OCI UNAUTHORIZED body', async () => {
    const response = await get(`${mirror.url}/v2/`);
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(CHALLENGE);
    expect(response.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(JSON.parse(response.body.toString()).errors[0].code).toBe('UNAUTHORIZED');
  });

  it('refuses a wrong password, an unknown user and a malformed header alike', async () => {
    for (const authorization of [basicAuth('alice', 'wrong'), basicAuth('mallory', 'correct horse'), 'Basic !!!', 'Bearer abc']) {
      const response = await get(`${mirror.url}/v2/`, { authorization });
      expect(response.status, authorization).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(CHALLENGE);
      expect(response.body.toString()).not.toContain('correct horse');
    }
  });

  it('serves /v2/ and pulls with the right credentials', async () => {
    const authorization = basicAuth('alice', 'correct horse');
    expect((await get(`${mirror.url}/v2/`, { authorization })).status).toBe(200);
    const manifest = await get(`${mirror.url}/v2/library/alpine/manifests/latest`, { authorization, accept: image.manifest.mediaType });
    expect(manifest.status).toBe(200);
    expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
    const layer = await get(`${mirror.url}/v2/library/alpine/blobs/${image.layers[0]!.digest}`, { authorization: basicAuth('bob', 'battery staple') });
    expect(layer.status).toBe(200);
    expect(sha256(layer.body)).toBe(image.layers[0]!.digest);
  });

  it('refuses every registry endpoint and method without credentials, before any upstream request', async () => {
    upstream.resetCounts();
    const paths = [`/v2/library/alpine/manifests/latest`, `/v2/library/alpine/blobs/${image.layers[0]!.digest}`, '/v2/library/alpine/tags/list'];
    for (const path of paths) {
      expect((await get(`${mirror.url}${path}`)).status, path).toBe(401);
      const headResponse = await head(`${mirror.url}${path}`);
      expect(headResponse.status, `HEAD ${path}`).toBe(401);
      expect(headResponse.headers['www-authenticate']).toMatch(CHALLENGE);
    }
    expect(upstream.count()).toBe(0);
  });

  it('keeps /healthz (and /readyz where mounted) open, protects the other operational paths', async () => {
    expect((await get(`${mirror.url}/healthz`)).status).toBe(200);
    expect((await get(`${mirror.url}/readyz`)).status).not.toBe(401);
    for (const path of ['/metrics', '/', '/api/status']) expect((await get(`${mirror.url}${path}`)).status, path).toBe(401);
  });
});

describe('htpasswd file', () => {
  it('takes bcrypt entries ($2y$, $2a$, $2b$), comments and blank lines', () => {
    const hash = '$2y$04$' + 'a'.repeat(53);
    const users = parseHtpasswd(`# comment\n\nalice:${hash}\nbob:${hash.replace('$2y$', '$2a$')}\r\ncarol:${hash.replace('$2y$', '$2b$')}\n`, 'users');
    expect([...users.keys()]).toEqual(['alice', 'bob', 'carol']);
  });

  it('refuses non-bcrypt entries naming the file and line, and empty files', () => {
    expect(() => parseHtpasswd('alice:$apr1$abc$def\n', '/etc/htpasswd')).toThrow(ConfigError);
    expect(() => parseHtpasswd('# ok\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n', '/etc/htpasswd')).toThrow(/\/etc\/htpasswd line 2: .*htpasswd -B/);
    expect(() => parseHtpasswd('# nobody\n', 'f')).toThrow(/no users/);
  });

  it('verifies, and remembers only successes', async () => {
    const dir = await tempDir('mirror-htpasswd-');
    try {
      await writeHtpasswd(dir.file('htpasswd'), { alice: 's3cret' });
      const htpasswd = await Htpasswd.load(dir.file('htpasswd'));
      try {
        expect(await htpasswd.verify('alice', 's3cret', '192.0.2.1')).toBe(true);
        expect(await htpasswd.verify('alice', 's3cret', '192.0.2.1')).toBe(true);
        expect(await htpasswd.verify('alice', 's3cret ', '192.0.2.1')).toBe(false);
        expect(await htpasswd.verify('nobody', 's3cret', '192.0.2.1')).toBe(false);
        const concurrent = await Promise.all(Array.from({ length: 10 }, () => htpasswd.verify('alice', 'wrong', '192.0.2.2')));
        expect(concurrent.every((ok) => ok === false)).toBe(true);
      } finally {
        await htpasswd.close();
      }
    } finally {
      await dir.remove();
    }
  });

  it('names a missing file', async () => {
    await expect(Htpasswd.load('/nonexistent/htpasswd')).rejects.toThrow(/auth\.htpasswd: cannot read \/nonexistent\/htpasswd/);
  });
});
