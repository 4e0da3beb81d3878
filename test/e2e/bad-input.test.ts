/**
 * Bad input (issue 2): names, tags and digests outside the distribution-spec grammars, registries
 * that are not configured, and write methods are refused with an OCI error body before anything
 * reaches the upstream or the disk; nothing answers 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestResponse } from '../helpers/http.js';
import { rawExchange } from '../helpers/raw-exchange.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { type E2eSetup, errorCode, rawRequest, startE2e } from './e2e-fixture.js';

let e2e: E2eSetup;
const image = makeImage({ layers: [100], seed: 'bad-input' });
const GOOD_DIGEST = image.layers[0]!.digest;

beforeAll(async () => {
  e2e = await startE2e();
  pushImage(e2e.fake, 'library/alpine', 'latest', image);
});

afterAll(async () => {
  await e2e?.close();
});

function expectOciError(response: TestResponse, status: number, code: string | string[], what: string): void {
  expect(response.status, what).toBe(status);
  expect(response.headers['content-type'], what).toMatch(/^application\/json/);
  const codes = Array.isArray(code) ? code : [code];
  expect(codes, `${what}: ${response.body.toString()}`).toContain(errorCode(response));
}

/** Sends each raw path and checks the error; the fake must see no request at all. */
async function expectRefused(cases: Array<[string, number, string | string[]]>, method = 'GET'): Promise<void> {
  e2e.fake.resetCounts();
  for (const [rawPath, status, code] of cases) {
    const response = await rawRequest(e2e.mirror.url, method, rawPath);
    expectOciError(response, status, code, `${method} ${rawPath}`);
    expect(response.headers['docker-distribution-api-version'], rawPath).toBe('registry/2.0');
  }
  expect(e2e.fake.requests.map((record) => `${record.method} ${record.path}`)).toEqual([]);
}

describe('invalid names', () => {
  it('are refused with 4xx NAME_INVALID (or a path that names no endpoint), nothing upstream', async () => {
    await expectRefused([
      ['/v2/UPPER/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library/UPPER/blobs/' + GOOD_DIGEST, 400, 'NAME_INVALID'],
      ['/v2/../manifests/latest', 404, 'NOT_FOUND'],
      ['/v2/library/../alpine/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library/alpine/../../etc/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/%2e%2e/manifests/latest', 404, 'NOT_FOUND'],
      ['/v2/library/%2e%2e/alpine/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library%2falpine/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/-alpine/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/alpine_/manifests/latest', 400, 'NAME_INVALID'],
      ['/v2/library//alpine/manifests/latest', 400, 'NAME_INVALID'],
      [`/v2/${'a'.repeat(256)}/manifests/latest`, 400, 'NAME_INVALID'],
      ['/v2/library/alpine/tags/list/extra', 404, 'NOT_FOUND'],
      ['/v2/library/alpine/unknown/latest', 404, 'NOT_FOUND'],
    ]);
  });
});

describe('invalid tags and digests', () => {
  it('tags outside the grammar answer 400 TAG_INVALID', async () => {
    await expectRefused([
      ['/v2/library/alpine/manifests/-latest', 400, 'TAG_INVALID'],
      ['/v2/library/alpine/manifests/.hidden', 400, 'TAG_INVALID'],
      ['/v2/library/alpine/manifests/bad%20tag', 400, 'TAG_INVALID'],
      ['/v2/library/alpine/manifests/%2e%2e', 400, ['TAG_INVALID', 'NAME_INVALID']],
      [`/v2/library/alpine/manifests/${'t'.repeat(129)}`, 400, 'TAG_INVALID'],
    ]);
  });

  it('digests outside the grammar answer 400 DIGEST_INVALID', async () => {
    const shortHex = `sha256:${'a'.repeat(63)}`;
    await expectRefused([
      ['/v2/library/alpine/blobs/sha256:zzz', 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/blobs/${shortHex}`, 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/blobs/${GOOD_DIGEST.toUpperCase()}`, 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/blobs/md5:${'a'.repeat(32)}`, 400, 'DIGEST_INVALID'],
      ['/v2/library/alpine/blobs/latest', 400, 'DIGEST_INVALID'],
      ['/v2/library/alpine/manifests/sha256:zzz', 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/manifests/${shortHex}`, 400, 'DIGEST_INVALID'],
      [`/v2/library/alpine/referrers/${shortHex}`, 400, 'DIGEST_INVALID'],
    ]);
  });

  it('HEAD with an invalid digest answers 400 without a body', async () => {
    e2e.fake.resetCounts();
    const response = await rawRequest(e2e.mirror.url, 'HEAD', '/v2/library/alpine/blobs/sha256:zzz');
    expect(response.status).toBe(400);
    expect(response.body.length).toBe(0);
    expect(e2e.fake.requests.length).toBe(0);
  });
});

describe('registries that are not mirrored here', () => {
  it('unknown ?ns= answers 404 NAME_UNKNOWN, malformed ?ns= 400', async () => {
    await expectRefused([
      ['/v2/library/alpine/manifests/latest?ns=quay.io', 404, 'NAME_UNKNOWN'],
      ['/v2/library/alpine/manifests/latest?ns=evil.example.com:8443', 404, 'NAME_UNKNOWN'],
      ['/v2/library/alpine/manifests/latest?ns=not%20a%20host', 400, ['NAME_INVALID', 'BAD_REQUEST']],
      ['/v2/library/alpine/manifests/latest?ns=-bad-.com', 400, ['NAME_INVALID', 'BAD_REQUEST']],
      ['/v2/library/alpine/manifests/latest?ns=http://docker.io', 400, ['NAME_INVALID', 'BAD_REQUEST']],
      ['/v2/library/alpine/manifests/latest?ns=', 400, ['NAME_INVALID', 'BAD_REQUEST']],
      ['/v2/library/alpine/manifests/latest?ns=docker.io&ns=quay.io', 400, 'BAD_REQUEST'],
    ]);
  });

  it('a path prefix naming an unconfigured registry answers 404 NAME_UNKNOWN', async () => {
    await expectRefused([
      ['/v2/quay.io/coreos/etcd/manifests/latest', 404, 'NAME_UNKNOWN'],
      ['/v2/localhost:5000/app/manifests/latest', 404, 'NAME_UNKNOWN'],
      [`/v2/ghcr.io/owner/app/blobs/${GOOD_DIGEST}`, 404, 'NAME_UNKNOWN'],
      ['/v2/ghcr.io/owner/app/tags/list', 404, 'NAME_UNKNOWN'],
    ]);
  });
});

describe('write methods', () => {
  const paths = [
    '/v2/library/alpine/manifests/latest',
    `/v2/library/alpine/blobs/${GOOD_DIGEST}`,
    '/v2/library/alpine/blobs/uploads/',
    '/v2/library/alpine/blobs/uploads/some-session',
    '/v2/library/alpine/tags/list',
  ];

  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    it(`${method} answers 405 UNSUPPORTED`, async () => {
      await expectRefused(paths.map((path) => [path, 405, 'UNSUPPORTED'] as [string, number, string]), method);
      const response = await rawRequest(e2e.mirror.url, method, paths[0]!);
      expect(response.headers.allow).toBe('GET, HEAD');
    });
  }

  it('GET on the upload endpoint answers 405 too', async () => {
    await expectRefused([['/v2/library/alpine/blobs/uploads/', 405, 'UNSUPPORTED']]);
  });
});

describe('no input produces a 500', () => {
  it('a mixed bag of odd requests never answers 5xx', async () => {
    const odd = [
      '/v2/%/manifests/latest',
      '/v2/%zz/manifests/latest',
      '/v2/library/alpine/manifests/%',
      '/v2/library/alpine/blobs/%ff',
      '/v2/library/alpine/tags/list?n=-1',
      '/v2/library/alpine/tags/list?n=abc',
      '/v2/library/alpine/referrers/sha256:zzz?artifactType=%',
      '/v2/library/alpine/manifests/latest?ns=%ff',
      '/v2//manifests/latest',
      '/v2/manifests/latest',
      '/v2/library/alpine/blobs/',
    ];
    e2e.fake.resetCounts();
    for (const rawPath of odd) {
      const response = await rawRequest(e2e.mirror.url, 'GET', rawPath);
      expect(response.status, rawPath).toBeGreaterThanOrEqual(400);
      expect(response.status, rawPath).toBeLessThan(500);
      expect(errorCode(response), rawPath).toBeTypeOf('string');
    }
    expect(e2e.fake.requests.length).toBe(0);
  });
});

describe('requests that never reach a route', () => {
  const cases: Array<[string, string, number]> = [
    ['a request line that is not HTTP', 'GARBAGE\r\n\r\n', 400],
    ['both Transfer-Encoding and Content-Length', 'POST /v2/ HTTP/1.1\r\nHost: mirror\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n', 400],
    ['headers past the size limit', `GET /v2/ HTTP/1.1\r\nHost: mirror\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['an HTTP/1.1 request without Host', 'GET /v2/ HTTP/1.1\r\n\r\n', 400],
    ['a Host header that is no host', 'GET /v2/ HTTP/1.1\r\nHost: a b\r\n\r\n', 400],
    ['the asterisk form', 'OPTIONS * HTTP/1.1\r\nHost: mirror\r\n\r\n', 400],
    ['an Expect other than 100-continue (RFC 9110 section 10.1.1)', 'PUT /v2/ HTTP/1.1\r\nHost: mirror\r\nExpect: foo\r\nContent-Length: 2\r\n\r\nab', 417],
    ['a backslash in the path', 'GET /v2/library\\alpine/manifests/latest HTTP/1.1\r\nHost: mirror\r\n\r\n', 400],
  ];
  for (const [what, bytes, status] of cases) {
    it(`${what}: ${status} with an OCI error body, and nothing upstream`, async () => {
      e2e.fake.resetCounts();
      const answer = await rawExchange(e2e.mirror.url, bytes);
      expect(answer.status).toBe(status);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(answer.headers['docker-distribution-api-version']).toBe('registry/2.0');
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
      expect((JSON.parse(answer.body) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('BAD_REQUEST');
      expect(e2e.fake.requests.length).toBe(0);
    });
  }

  it('an HTTP/1.0 request without Host is served: a load balancer\'s health check', async () => {
    const answer = await rawExchange(e2e.mirror.url, 'GET /v2/ HTTP/1.0\r\n\r\n');
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('{}');
  });

  it('CONNECT answers 405 UNSUPPORTED and closes: the mirror tunnels nowhere', async () => {
    e2e.fake.resetCounts();
    const upstream = new URL(e2e.fake.url).host;
    const answer = await rawExchange(e2e.mirror.url, `CONNECT ${upstream} HTTP/1.1\r\nHost: ${upstream}\r\n\r\n`);
    expect(answer.status).toBe(405);
    expect(answer.headers.connection).toBe('close');
    expect((JSON.parse(answer.body) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNSUPPORTED');
    expect(e2e.fake.requests.length).toBe(0);
  });
});
