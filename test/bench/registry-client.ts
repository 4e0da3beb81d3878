/**
 * Just enough of a pulling client for the benchmark: manifest by tag with the Accept header
 * container clients send, blobs streamed and checked against their digest and size, redirects
 * followed (distribution-spec allows a blob GET to answer 307). `headers` go with every request
 * (an Authorization for a mirror with auth.htpasswd). Every request has a deadline.
 */
import { createHash } from 'node:crypto';
import { request, type Agent, type IncomingMessage } from 'node:http';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const REQUEST_TIMEOUT_MS = 300_000;
const MAX_REDIRECTS = 3;

export interface BlobResult {
  bytes: number;
  /** Until the whole body was read (and hashed). */
  ms: number;
  /** Until the first body byte, not the headers: a server may send headers long before data. */
  ttfbMs: number;
}

export function assertLoopback(url: string): void {
  const { protocol, hostname } = new URL(url);
  if (protocol !== 'http:' || !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(hostname)) throw new Error(`refusing non-loopback target ${url}`);
}

export async function get(url: string, agent: Agent, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  assertLoopback(url);
  let current = url;
  for (let hops = 0; ; hops++) {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(current, { agent, headers }, resolve);
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms: GET ${current}`)));
      req.on('error', reject);
      req.end();
    });
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(response.statusCode ?? 0) || !location || hops >= MAX_REDIRECTS) return response;
    response.resume();
    current = new URL(location, current).toString();
    assertLoopback(current);
  }
}

/** Streams a blob, hashing it when `verify` is set; throws on a wrong status, size or digest. */
export async function getBlob(base: string, repo: string, digest: string, size: number, agent: Agent, verify = true, headers: Record<string, string> = {}): Promise<BlobResult> {
  const started = performance.now();
  const response = await get(`${base}/v2/${repo}/blobs/${digest}`, agent, headers);
  if (response.statusCode !== 200) {
    const body = await readAll(response);
    throw new Error(`GET blob ${digest.slice(0, 19)}: status ${response.statusCode} ${body.subarray(0, 300).toString()}`);
  }
  const hash = verify ? createHash('sha256') : undefined;
  let bytes = 0;
  let ttfbMs = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (bytes === 0) ttfbMs = performance.now() - started;
    bytes += chunk.length;
    hash?.update(chunk);
  }
  if (!response.complete) throw new Error(`GET blob ${digest.slice(0, 19)}: connection ended after ${bytes} bytes`);
  if (bytes !== size) throw new Error(`GET blob ${digest.slice(0, 19)}: ${bytes} bytes, expected ${size}`);
  if (hash && `sha256:${hash.digest('hex')}` !== digest) throw new Error(`GET blob ${digest.slice(0, 19)}: digest mismatch`);
  return { bytes, ms: performance.now() - started, ttfbMs };
}

export interface PullResult {
  ms: number;
  bytes: number;
  requests: number;
  manifestDigest: string;
}

interface ManifestBody {
  config: { digest: string; size: number };
  layers: Array<{ digest: string; size: number }>;
}

/** Tag -> manifest -> config + layers with `parallel` downloads at once, all verified. */
export async function pull(base: string, repo: string, tag: string, agent: Agent, parallel = 3, headers: Record<string, string> = {}): Promise<PullResult> {
  const started = performance.now();
  const response = await get(`${base}/v2/${repo}/manifests/${tag}`, agent, { ...headers, accept: MANIFEST_ACCEPT });
  const body = Buffer.concat(await response.toArray());
  if (response.statusCode !== 200) throw new Error(`GET manifest ${repo}:${tag}: status ${response.statusCode}`);
  const manifestDigest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const claimed = response.headers['docker-content-digest'];
  if (claimed && claimed !== manifestDigest) throw new Error(`manifest ${repo}:${tag}: Docker-Content-Digest ${claimed}, body is ${manifestDigest}`);
  const manifest = JSON.parse(body.toString()) as ManifestBody;
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new Error(`manifest ${repo}:${tag} is not an image manifest`);
  const queue = [manifest.config, ...manifest.layers];
  let bytes = body.length;
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const result = await getBlob(base, repo, next.digest, next.size, agent, true, headers);
      bytes += result.bytes;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { ms: performance.now() - started, bytes, requests: 2 + manifest.layers.length, manifestDigest };
}

async function readAll(response: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk);
  return Buffer.concat(chunks);
}
