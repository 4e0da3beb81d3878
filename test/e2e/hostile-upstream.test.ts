/**
 * A hostile or broken upstream, through the real mirror on real sockets (issue 12, items 3, 4
 * and 9): redirects into internal networks are never dialled, only manifest media types are
 * served, and upstream faults reach clients as 502/503.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { answer, startHostile, type HostileServer } from '../helpers/hostile-upstream.js';
import { get, type TestResponse } from '../helpers/http.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';

const REPO = 'library/alpine';
const DIGEST = `sha256:${'b'.repeat(64)}`;
const SECRET = '{"AccessKeyId":"ASIA-SECRET","SecretAccessKey":"very-secret","Token":"x"}';

let mirror: MirrorUnderTest | undefined;
const servers: HostileServer[] = [];
afterEach(async () => {
  await mirror?.close();
  mirror = undefined;
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function hostile(...args: Parameters<typeof startHostile>): Promise<HostileServer> {
  const server = await startHostile(...args);
  servers.push(server);
  return server;
}

async function mirrorOf(upstream: HostileServer, extra: Record<string, unknown> = {}): Promise<MirrorUnderTest> {
  mirror = await startMirror({ upstreams: { 'docker.io': { url: upstream.url, ...extra } } });
  return mirror;
}

function errorOf(response: TestResponse): { code: string; message: string } {
  return (JSON.parse(response.body.toString('utf8')) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
}

describe('redirects into internal networks', () => {
  it('a manifest redirected to a metadata-endpoint stand-in: 502 naming the host and redirectHosts, no connection, nothing cached', async () => {
    const metadata = await hostile((_req, res) => answer(res, 200, { 'content-type': 'application/json' }, SECRET));
    const upstream = await hostile((_req, res) => answer(res, 302, { location: `${metadata.url}/latest/meta-data/iam/security-credentials/admin` }));
    const { url } = await mirrorOf(upstream);
    for (let i = 0; i < 2; i++) {
      const response = await get(`${url}/v2/${REPO}/manifests/latest`);
      expect(response.status).toBe(502);
      expect(response.body.toString()).not.toContain('SECRET');
      expect(errorOf(response).message).toContain(metadata.host);
      expect(errorOf(response).message).toContain('upstreams["docker.io"].redirectHosts');
    }
    expect(metadata.connections).toBe(0);
    // Refused answers are not cached: the second request asked the upstream again.
    expect(upstream.requests.filter((line) => line.startsWith('GET /v2/library/alpine/manifests/latest'))).toHaveLength(2);
  });

  it('a blob redirected to a loopback port that is not allowed: 502 and not one byte', async () => {
    const sink = await hostile((_req, res) => answer(res, 200, { 'content-type': 'application/octet-stream' }, SECRET));
    const upstream = await hostile((_req, res) => answer(res, 307, { location: `${sink.url}/internal/admin` }));
    const { url } = await mirrorOf(upstream);
    const response = await get(`${url}/v2/${REPO}/blobs/${DIGEST}`);
    expect(response.status).toBe(502);
    expect(response.body.toString()).not.toContain('SECRET');
    expect(errorOf(response).message).toContain(`add "${sink.host}" to upstreams["docker.io"].redirectHosts`);
    expect(sink.connections).toBe(0);
  });

  it('follows the same redirect once the host is listed in redirectHosts', async () => {
    const bytes = Buffer.from('layer bytes from the internal CDN');
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;
    const cdn = await hostile((_req, res) => answer(res, 200, { 'content-type': 'application/octet-stream' }, bytes));
    const upstream = await hostile((_req, res) => answer(res, 307, { location: `${cdn.url}/blob` }));
    const { url } = await mirrorOf(upstream, { redirectHosts: [cdn.host] });
    const response = await get(`${url}/v2/${REPO}/blobs/${digest}`);
    expect(response.status).toBe(200);
    expect(response.body.equals(bytes)).toBe(true);
    expect(cdn.connections).toBe(1);
  });
});

describe('manifest content types', () => {
  const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
  const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] });

  for (const [label, contentType] of [
    ['text/html', 'text/html; charset=utf-8'],
    ['a Latin-1 value', 'application/vnd.oci.image.manifest.v1+json\u00e9'],
  ]) {
    it(`a manifest sent as ${label}: 502, never cached, served right once the upstream is fixed`, async () => {
      const upstream = await hostile((_req, res) => answer(res, 200, { 'content-type': contentType }, body));
      const { url } = await mirrorOf(upstream);
      const refused = await get(`${url}/v2/${REPO}/manifests/latest`);
      expect(refused.status).toBe(502);
      expect(refused.headers['content-type']).toMatch(/^application\/json/);
      expect(errorOf(refused).code).toBe('UPSTREAM_ERROR');

      upstream.handle((_req, res) => answer(res, 200, { 'content-type': OCI_MANIFEST }, body));
      const served = await get(`${url}/v2/${REPO}/manifests/latest`);
      expect(served.status).toBe(200);
      expect(served.headers['content-type']).toBe(OCI_MANIFEST);
      expect(served.body.toString()).toBe(body);
      expect(upstream.requests.filter((line) => line.startsWith('GET /v2/library/alpine/manifests/latest'))).toHaveLength(2);
    });
  }

  it('a manifest whose own mediaType is text/html is refused even when the header says OCI', async () => {
    const html = JSON.stringify({ schemaVersion: 2, mediaType: 'text/html', config: {}, layers: [] });
    const upstream = await hostile((_req, res) => answer(res, 200, { 'content-type': OCI_MANIFEST }, html));
    const { url } = await mirrorOf(upstream);
    const response = await get(`${url}/v2/${REPO}/manifests/latest`);
    expect(response.status).toBe(502);
    expect(response.headers['content-type']).not.toMatch(/html/);
  });
});

describe('bodies the mirror gives up on', () => {
  it('a blob answered 200, chunked, without Content-Length: no unhandled error, the mirror keeps serving', async () => {
    const uncaught: unknown[] = [];
    const record = (error: unknown) => void uncaught.push(error);
    process.on('uncaughtException', record);
    try {
      const bytes = Buffer.from('a small chunked layer');
      const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;
      const upstream = await hostile((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no Content-Length: chunked
        res.end(bytes);
      });
      const { url } = await mirrorOf(upstream);
      const response = await get(`${url}/v2/${REPO}/blobs/${digest}`);
      if (response.status === 200) expect(response.body.equals(bytes)).toBe(true);
      else expect(response.status).toBeGreaterThanOrEqual(500);
      await new Promise((resolve) => setTimeout(resolve, 2000)); // the crash came about 1.5 s later
      expect(uncaught).toEqual([]);
      expect((await get(`${url}/v2/`)).status).toBe(200);
    } finally {
      process.off('uncaughtException', record);
    }
  });
});

describe('upstream faults on tag lists', () => {
  for (const [status, expected] of [[400, 502], [405, 502], [503, 503]] as const) {
    it(`an upstream ${status} for a repository the mirror knows no tags of answers ${expected}, not 404`, async () => {
      const upstream = await hostile((_req, res) => answer(res, status, { 'content-type': 'application/json' }, '{"errors":[]}'));
      const { url } = await mirrorOf(upstream);
      const response = await get(`${url}/v2/${REPO}/tags/list`);
      expect(response.status).toBe(expected);
      expect(errorOf(response).code).not.toBe('NAME_UNKNOWN');
    });
  }
});
