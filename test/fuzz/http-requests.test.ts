/**
 * The parsers as the running mirror uses them: hostile request lines (paths, `?ns=`), `Range`
 * and `Authorization` headers, written byte for byte on a raw socket to a mirror with client
 * auth in front of a fake upstream holding one image. Whatever the request, the answer comes,
 * and it is never a 5xx: every bad input is the client's fault (a 4xx), and the upstream is
 * healthy.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { basicAuth } from '../helpers/http.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { rawExchange } from '../helpers/raw-exchange.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { tempDir, writeHtpasswd, type TempDir } from '../security/security-fixture.js';
import { FUZZ_IO, hostile, mutated, repositoryName, sha256Digest, tag } from './fuzz-support.js';

const RIGHT = basicAuth('alice', 'right');

/**
 * The status of the answer to exactly these bytes on a connection of their own. From `from` (a
 * loopback address), so that failure limits per address do not turn every answer into a
 * held-back 429.
 */
async function statusOf(port: number, request: Buffer, from = '127.0.0.1'): Promise<number> {
  return (await rawExchange(`http://127.0.0.1:${port}`, request, { from })).status;
}

/**
 * As a client puts text into a request line: UTF-8, with controls, spaces and non-ASCII bytes
 * percent-encoded (a raw space or CR/LF would end the request line early).
 */
function asRequestTarget(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((byte) => (byte > 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, '0')}`)).join('');
}

function requestBytes(method: string, target: string, headers: Record<string, string>): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

describe('hostile requests to a running mirror', () => {
  let dir: TempDir;
  let upstream: FakeRegistry;
  let mirror: MirrorUnderTest;
  let port: number;
  const image = makeImage({ layers: [1500], seed: 'fuzz-requests' });

  beforeAll(async () => {
    dir = await tempDir('mirror-fuzz-requests-');
    await writeHtpasswd(dir.file('htpasswd'), { alice: 'right' });
    upstream = await startFakeRegistry();
    pushImage(upstream, 'library/alpine', 'latest', image);
    mirror = await startMirror({ upstreams: { 'docker.io': { url: upstream.url }, 'gcr.io': { url: upstream.url } }, auth: { htpasswd: dir.file('htpasswd') } });
    port = Number(new URL(mirror.url).port);
  });
  afterAll(async () => {
    await mirror?.close();
    await upstream?.close();
    await dir?.remove();
  });

  it('answers every path and ?ns= with a status below 500', async () => {
    // sha256 only: the fake upstream answers 400 to sha512 digests (distribution answers 404),
    // which the mirror rightly turns into 502.
    const validPath = fc.oneof(
      fc.tuple(repositoryName, fc.oneof(tag, sha256Digest)).map(([name, reference]) => `/v2/${name}/manifests/${reference}`),
      fc.tuple(repositoryName, sha256Digest).map(([name, reference]) => `/v2/${name}/blobs/${reference}`),
      repositoryName.map((name) => `/v2/${name}/tags/list`),
      fc.constant('/v2/library/alpine/manifests/latest'),
      fc.constant(`/v2/gcr.io/library/alpine/blobs/${image.layers[0]!.digest}`),
    );
    const query = fc.option(fc.oneof(hostile(fc.constantFrom('docker.io', 'gcr.io', 'Docker.IO', 'quay.io')).map((ns) => `ns=${ns}`), fc.string()), { nil: undefined });
    const target = fc.tuple(hostile(validPath), query).map(([path, ns]) => asRequestTarget(`${path}${ns === undefined ? '' : `?${ns}`}`));
    await fc.assert(fc.asyncProperty(target, fc.constantFrom('GET', 'HEAD'), async (path, method) => {
      const status = await statusOf(port, requestBytes(method, path, { authorization: RIGHT, accept: image.manifest.mediaType }));
      expect(status, `${method} ${path}`).toBeLessThan(500);
    }), { ...FUZZ_IO, numRuns: FUZZ_IO.numRuns * 4 });
  });

  it('answers every Range header on a blob with 200, 206 or 416', async () => {
    const range = hostile(fc.tuple(fc.nat({ max: 3000 }), fc.option(fc.nat({ max: 3000 }))).map(([first, last]) => `bytes=${first}-${last ?? ''}`)).map((text) => text.replace(/[\r\n\0]/g, ''));
    await fc.assert(fc.asyncProperty(range, async (value) => {
      const status = await statusOf(port, requestBytes('GET', `/v2/library/alpine/blobs/${image.layers[0]!.digest}`, { authorization: RIGHT, range: value }));
      expect([200, 206, 400, 416], `Range: ${value}`).toContain(status);
    }), { ...FUZZ_IO, numRuns: FUZZ_IO.numRuns * 2 });
  });

  it('answers every Authorization header with 200, 401 or 429', async () => {
    const header = hostile(fc.constantFrom(RIGHT, basicAuth('alice', 'wrong'), basicAuth('bob', 'right'), 'Bearer abc', 'Basic')).map((text) => text.replace(/[\r\n\0]/g, ''));
    await fc.assert(fc.asyncProperty(fc.oneof(header, mutated(header)), fc.integer({ min: 2, max: 250 }), async (value, host) => {
      const status = await statusOf(port, requestBytes('GET', '/v2/', { authorization: value }), `127.0.${host}.${host}`);
      expect([200, 400, 401, 429], `Authorization: ${value}`).toContain(status);
    }), { ...FUZZ_IO, numRuns: FUZZ_IO.numRuns * 2 });
  });
});
