/**
 * Just enough of a pushing client for the benchmark, streaming every byte from a file (nothing
 * buffered): a monolithic upload (POST, then PUT <location>?digest= with the blob), a chunked one
 * (POST, PATCHes with Content-Range, then PUT ?digest= with no body), and an image push with
 * `parallel` layer uploads at once, each preceded by the HEAD a real client sends
 * (distribution-spec "Push"). Loopback targets only; every request has a deadline.
 */
import { createReadStream } from 'node:fs';
import { request, type Agent, type IncomingMessage } from 'node:http';
import { assertLoopback } from './registry-client.js';
import type { BenchImage, BlobFile } from './bench-images.js';

const REQUEST_TIMEOUT_MS = 600_000;

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A byte range of a file (streamed), or small bytes (a manifest). */
type Body = { file: string; start: number; end: number } | Buffer;

function send(url: string, agent: Agent, method: string, headers: Record<string, string>, body?: Body): Promise<Answer> {
  assertLoopback(url);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString().slice(0, 500) }));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms: ${method} ${url}`)));
    req.on('error', reject);
    if (!body || Buffer.isBuffer(body)) return void req.end(body);
    const stream = createReadStream(body.file, { start: body.start, end: body.end, highWaterMark: 1024 * 1024 });
    stream.on('error', (error) => req.destroy(error));
    stream.pipe(req);
  });
}

function expect(answer: Answer, status: number, what: string): Answer {
  if (answer.status !== status) throw new Error(`${what}: expected ${status}, got ${answer.status} ${answer.body}`);
  return answer;
}

async function startUpload(base: string, repo: string, agent: Agent): Promise<string> {
  const answer = expect(await send(`${base}/v2/${repo}/blobs/uploads/`, agent, 'POST', { 'content-length': '0' }), 202, `POST ${repo} upload`);
  return new URL(answer.headers.location ?? '', base).toString();
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}

/** POST, then one PUT ?digest= carrying the whole blob. */
export async function pushMonolithic(base: string, repo: string, blob: BlobFile, agent: Agent): Promise<void> {
  const location = await startUpload(base, repo, agent);
  const headers = { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) };
  expect(await send(withDigest(location, blob.digest), agent, 'PUT', headers, { file: blob.file, start: 0, end: blob.size - 1 }), 201, `PUT ${repo} ${blob.digest}`);
}

/** POST, PATCH `chunkSize` bytes at a time (Content-Range start-end, inclusive), then PUT ?digest= without a body. */
export async function pushChunked(base: string, repo: string, blob: BlobFile, chunkSize: number, agent: Agent): Promise<number> {
  let location = await startUpload(base, repo, agent);
  let patches = 0;
  for (let start = 0; start < blob.size; start += chunkSize) {
    const end = Math.min(start + chunkSize, blob.size) - 1;
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` };
    const answer = expect(await send(location, agent, 'PATCH', headers, { file: blob.file, start, end }), 202, `PATCH ${repo} ${start}-${end}`);
    if (answer.headers.range !== `0-${end}`) throw new Error(`PATCH ${repo} ${start}-${end}: Range ${answer.headers.range ?? '(none)'}, expected 0-${end}`);
    location = new URL(answer.headers.location ?? location, base).toString();
    patches += 1;
  }
  expect(await send(withDigest(location, blob.digest), agent, 'PUT', { 'content-length': '0' }), 201, `PUT ${repo} ${blob.digest} (close)`);
  return patches;
}

/** HEAD (absent: upload monolithically) for every blob, `parallel` at once; then the manifest. Returns the blobs uploaded. */
export async function pushImage(base: string, repo: string, image: BenchImage, parallel: number, agent: Agent): Promise<number> {
  const queue = [...image.layers, image.config];
  let uploaded = 0;
  const worker = async () => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      const head = await send(`${base}/v2/${repo}/blobs/${blob.digest}`, agent, 'HEAD', {});
      if (head.status === 200) continue;
      await pushMonolithic(base, repo, blob, agent);
      uploaded += 1;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const headers = { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(image.manifestBytes.length) };
  const answer = expect(await send(`${base}/v2/${repo}/manifests/${image.tag}`, agent, 'PUT', headers, image.manifestBytes), 201, `PUT ${repo}:${image.tag}`);
  if (answer.headers['docker-content-digest'] !== image.manifestDigest) throw new Error(`PUT ${repo}:${image.tag}: digest ${String(answer.headers['docker-content-digest'])}, expected ${image.manifestDigest}`);
  return uploaded;
}

/** The blob is there, with its size: HEAD answers 200 and Content-Length. */
export async function assertStored(base: string, repo: string, blob: BlobFile, agent: Agent): Promise<void> {
  const head = expect(await send(`${base}/v2/${repo}/blobs/${blob.digest}`, agent, 'HEAD', {}), 200, `HEAD ${repo} ${blob.digest}`);
  if (Number(head.headers['content-length']) !== blob.size) throw new Error(`HEAD ${repo} ${blob.digest}: Content-Length ${head.headers['content-length']}, expected ${blob.size}`);
}
