/**
 * Shared set-up for the end-to-end suites: one or more fake upstream registries on real sockets
 * and the real mirror in front of them, plus the few probes the suites share (raw requests that
 * undici would normalise, the blob's path in the cache, streaming reads).
 */
import { request as httpRequest } from 'node:http';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { type FakeRegistry, type FakeRegistryOptions, type RequestRecord, startFakeRegistry } from '../helpers/fake-registry.js';
import { type TestResponse, sha256 } from '../helpers/http.js';
import { type MirrorUnderTest, type RawConfig, startMirror } from '../helpers/mirror-under-test.js';

export interface E2eSetup {
  /** The upstream named `docker.io` (the default upstream). */
  fake: FakeRegistry;
  /** Every fake, by upstream name. */
  fakes: Record<string, FakeRegistry>;
  mirror: MirrorUnderTest;
  /** Absolute URL on the mirror for a path such as `/v2/`. */
  url(pathname: string): string;
  close(): Promise<void>;
}

export interface E2eOptions {
  /** Options for every fake; default: bearer auth, blobs redirected to the CDN. */
  fake?: FakeRegistryOptions;
  /** Upstream names to start a fake for; default ['docker.io']. The first is the default upstream. */
  upstreams?: string[];
  /** Extra mirror config (tags, fetch, ...). */
  config?: Omit<Partial<RawConfig>, 'upstreams'>;
}

export async function startE2e(options: E2eOptions = {}): Promise<E2eSetup> {
  const names = options.upstreams ?? ['docker.io'];
  const fakes: Record<string, FakeRegistry> = {};
  try {
    for (const name of names) fakes[name] = await startFakeRegistry({ auth: 'bearer', redirectBlobsToCdn: true, ...options.fake });
    // The token server and the CDN listen on loopback like the registry: the config names them.
    const upstreams = Object.fromEntries(
      names.map((name) => [name, { url: fakes[name]!.url, tokenRealms: [new URL(fakes[name]!.tokenUrl).host], redirectHosts: [new URL(fakes[name]!.cdnUrl).host] }]),
    );
    const mirror = await startMirror({ defaultUpstream: names[0], ...options.config, upstreams });
    return {
      fake: fakes[names[0]!]!,
      fakes,
      mirror,
      url: (pathname) => `${mirror.url}${pathname}`,
      async close() {
        await mirror.close();
        await Promise.all(Object.values(fakes).map((fake) => fake.close()));
      },
    };
  } catch (error) {
    await Promise.all(Object.values(fakes).map((fake) => fake.close()));
    throw error;
  }
}

/** Where the mirror keeps a published blob (store/store-paths.ts layout). */
export function cachedBlobPath(mirror: MirrorUnderTest, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(mirror.cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

export function isBlobCached(mirror: MirrorUnderTest, digest: string): boolean {
  return existsSync(cachedBlobPath(mirror, digest));
}

/** Upstream requests of any kind to any of the fake's servers (registry, CDN, token). */
export function upstreamTotal(fake: FakeRegistry): number {
  return fake.requests.length;
}

/**
 * Blob transfers started upstream: GETs at the CDN, plus registry GETs that were not a 307 to
 * the CDN or a 401 auth challenge. A download cut before its head counts too (status 0).
 */
export function blobGets(fake: FakeRegistry, digest?: string): number {
  const needle = digest ?? '/blobs/';
  const transfers = (record: RequestRecord) =>
    record.server === 'cdn' || (record.server === 'registry' && record.status !== 307 && record.status !== 401);
  return fake.requests.filter((record) => record.method === 'GET' && record.path.includes(needle) && transfers(record)).length;
}

/**
 * A request with the path exactly as given: undici and fetch resolve `..` and `%2e%2e` before
 * sending, which would hide what the mirror does with them.
 */
export function rawRequest(base: string, method: string, rawPath: string, timeoutMs = 10_000): Promise<TestResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path: rawPath, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`raw request ${method} ${rawPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The OCI error code of an error response body (distribution-spec "Error Codes"). */
export function errorCode(response: TestResponse): string | undefined {
  const parsed = JSON.parse(response.body.toString('utf8')) as { errors?: Array<{ code?: string }> };
  return parsed.errors?.[0]?.code;
}

export interface StreamedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Set when the body broke off (reset, premature close, body timeout). */
  error?: Error;
  digest: string;
}

/**
 * A GET that reads the body to the end or to the first error, calling `onFirstChunk` when the
 * first bytes arrive; `signal` lets a test hang up mid-body.
 */
export async function streamGet(
  url: string,
  options: { onFirstChunk?: () => void; signal?: AbortSignal; stopAfterBytes?: number; headers?: Record<string, string> } = {},
): Promise<StreamedResponse> {
  let response;
  try {
    response = await request(url, { headers: options.headers ?? {}, signal: options.signal, headersTimeout: 20_000, bodyTimeout: 20_000 });
  } catch (caught) {
    // The connection closed before a response head: status 0, nothing received.
    return { status: 0, headers: {}, body: Buffer.alloc(0), error: caught as Error, digest: sha256(Buffer.alloc(0)) };
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let error: Error | undefined;
  try {
    for await (const chunk of response.body) {
      if (received === 0) options.onFirstChunk?.();
      chunks.push(Buffer.from(chunk as Uint8Array));
      received += (chunk as Uint8Array).byteLength;
      if (options.stopAfterBytes !== undefined && received >= options.stopAfterBytes) {
        response.body.destroy();
        break;
      }
    }
  } catch (caught) {
    error = caught as Error;
  }
  const body = Buffer.concat(chunks);
  return { status: response.statusCode, headers: response.headers, body, error, digest: sha256(body) };
}

/** True when a response delivered exactly `bytes`, completely and cleanly. */
export function deliveredExactly(response: StreamedResponse, bytes: Buffer): boolean {
  return response.status === 200 && response.error === undefined && response.body.equals(bytes);
}
