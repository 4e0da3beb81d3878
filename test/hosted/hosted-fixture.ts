/**
 * Set-up for the hosted-repository suites: the real mirror (composeMirror on a real socket)
 * with hosted repositories, in front of a counting fake upstream (`docker.io`), plus a small
 * push client that sends exactly what a test says (method, headers, body) and reads the answer.
 */
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { sha256, type TestResponse } from '../helpers/http.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import type { TestBlob, TestImage, TestIndex } from '../helpers/test-images.js';
import { tempDir, writeHtpasswd, type TempDir } from '../security/security-fixture.js';

export interface HostedSetup {
  mirror: MirrorUnderTest;
  upstream: FakeRegistry;
  url(path: string): string;
  close(): Promise<void>;
}

export interface HostedOptions {
  /** Extra top-level config; `hosted` is merged over the default (team/**, my-image, anonymous pushes). */
  config?: Record<string, unknown>;
  /** htpasswd users: every client then authenticates. */
  users?: Record<string, string>;
  /** Keep using this cache directory (restart tests). */
  cacheDir?: string;
}

export const HOSTED_DEFAULT = { repositories: ['team/**', 'my-image'], allowAnonymousPush: true };

export async function startHosted(options: HostedOptions = {}): Promise<HostedSetup> {
  const upstream = await startFakeRegistry();
  let dir: TempDir | undefined;
  try {
    const { hosted, ...rest } = (options.config ?? {}) as { hosted?: Record<string, unknown> };
    const config: Record<string, unknown> = { ...rest, hosted: { ...HOSTED_DEFAULT, ...hosted } };
    if (options.users) {
      dir = await tempDir('mirror-hosted-auth-');
      await writeHtpasswd(dir.file('htpasswd'), options.users);
      config.auth = { ...(config.auth as object | undefined), htpasswd: dir.file('htpasswd') };
    }
    const mirror = await startMirror({ upstreams: { 'docker.io': { url: upstream.url } }, ...config }, options.cacheDir ? { cacheDir: options.cacheDir } : {});
    return {
      mirror, upstream,
      url: (path) => `${mirror.url}${path}`,
      async close() {
        await mirror.close();
        await upstream.close();
        await dir?.remove();
      },
    };
  } catch (error) {
    await upstream.close();
    await dir?.remove();
    throw error;
  }
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A Readable is sent with Transfer-Encoding: chunked (no Content-Length), as dockerd and podman upload. */
  body?: Buffer | string | Readable;
}

/** One request, redirects not followed, the whole answer read. */
export async function call(url: string, options: CallOptions = {}): Promise<TestResponse> {
  const response = await request(url, {
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body };
}

export function errorCodes(response: TestResponse): string[] {
  return ((JSON.parse(response.body.toString('utf8')) as { errors?: Array<{ code: string }> }).errors ?? []).map((error) => error.code);
}

export function header(response: TestResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** POST to open a session; the Location it answered (absolute). */
export async function openUpload(base: string, repository: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await call(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0', ...headers } });
  if (response.status !== 202) throw new Error(`POST upload ${repository}: ${response.status} ${response.body.toString()}`);
  return new URL(header(response, 'location')!, base).toString();
}

export function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.append('digest', digest);
  return url.toString();
}

/** POST then PUT ?digest= with the whole blob (as containerd pushes); the digest. */
export async function pushBlob(base: string, repository: string, bytes: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const digest = sha256(bytes);
  const location = await openUpload(base, repository, headers);
  const response = await call(withDigest(location, digest), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', ...headers }, body: bytes });
  if (response.status !== 201) throw new Error(`PUT blob ${repository}: ${response.status} ${response.body.toString()}`);
  return digest;
}

export async function putManifest(base: string, repository: string, reference: string, manifest: Pick<TestBlob, 'bytes' | 'mediaType'>, headers: Record<string, string> = {}): Promise<TestResponse> {
  return call(`${base}/v2/${repository}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': manifest.mediaType, ...headers }, body: manifest.bytes });
}

/** Blobs, child manifests, then the manifest under `tag` (or its digest). */
export async function pushImageTo(base: string, repository: string, tag: string | undefined, image: TestImage | TestIndex, headers: Record<string, string> = {}): Promise<TestResponse> {
  const images = image.kind === 'index' ? image.images : [image];
  for (const child of images) {
    for (const blob of [child.config, ...child.layers]) await pushBlob(base, repository, blob.bytes, headers);
    if (image.kind === 'index') await expectStatus(putManifest(base, repository, child.manifest.digest, child.manifest, headers), 201);
  }
  return expectStatus(putManifest(base, repository, tag ?? image.manifest.digest, image.manifest, headers), 201);
}

async function expectStatus(pending: Promise<TestResponse>, status: number): Promise<TestResponse> {
  const response = await pending;
  if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${response.body.toString()}`);
  return response;
}

/** Requests the fake upstream saw other than reads: a hosted write must never add one. */
export function upstreamWrites(upstream: FakeRegistry): number {
  return upstream.requests.filter((record) => record.method !== 'GET' && record.method !== 'HEAD').length;
}
