/**
 * Every upstream body is consumed, or destroyed with its error handled (issue 12 item 1): an
 * undici body destroyed before it was read to the end emits an 'error' (RequestAbortedError),
 * and one nobody listens to kills the process. Chunked answers (no Content-Length) are normal.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamBadResponseError } from '../../src/domain/errors.js';
import { MAX_MANIFEST_BYTES, OCI_MANIFEST, UPSTREAM_MANIFEST_ACCEPT } from '../../src/domain/media-types.js';
import type { UpstreamRegistry } from '../../src/upstream/upstream-registry.js';
import { closeAllServers, startServer, upstreamFor } from './fake-servers.js';

const BLOB = `sha256:${'9'.repeat(64)}`;
const GET = { method: 'GET', accept: UPSTREAM_MANIFEST_ACCEPT } as const;
const upstreams: UpstreamRegistry[] = [];
const uncaught: unknown[] = [];
const record = (error: unknown) => void uncaught.push(error);

beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', record);
});
afterEach(async () => {
  process.off('uncaughtException', record);
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await closeAllServers();
});

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Answers with a chunked body (no Content-Length). */
async function chunked(body: Buffer, contentType = 'application/octet-stream') {
  const server = await startServer((_req, res) => {
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
  });
  const upstream = upstreamFor(server.origin);
  upstreams.push(upstream);
  return upstream;
}

describe('upstream bodies', () => {
  it('a blob body that arrived whole and is then dropped unread does not raise an unhandled error', async () => {
    const upstream = await chunked(Buffer.from('chunked blob bytes'));
    const blob = await upstream.fetchBlob('library/alpine', BLOB);
    expect(blob.size).toBeUndefined();
    await settle(100); // the whole body is in undici's buffer now
    blob.body.destroy(); // what a caller does at an early exit, without an error listener
    await settle(100);
    expect(uncaught).toEqual([]);
  });

  it('a caller reading the blob body still sees its errors', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const upstream = upstreamFor(server.origin);
    upstreams.push(upstream);
    const blob = await upstream.fetchBlob('library/alpine', BLOB);
    await expect((async () => { for await (const _chunk of blob.body); })()).rejects.toThrow();
  });

  it('reads a chunked manifest up to the 4 MiB limit, and refuses one byte more without an unhandled error', async () => {
    const base = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [], annotations: { pad: '' } });
    const fill = (size: number) => Buffer.from(base.replace('"pad":""', `"pad":"${'x'.repeat(size - base.length)}"`));
    const exact = fill(MAX_MANIFEST_BYTES);
    const ok = await chunked(exact, OCI_MANIFEST);
    expect((await ok.fetchManifest('library/alpine', 'latest', GET)).bytes?.equals(exact)).toBe(true);
    const over = await chunked(fill(MAX_MANIFEST_BYTES + 1), OCI_MANIFEST);
    await expect(over.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamBadResponseError);
    await settle(100);
    expect(uncaught).toEqual([]);
  });

  it('refuses a declared length over the limit before reading, without an unhandled error', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': MAX_MANIFEST_BYTES + 10 });
      res.end(Buffer.alloc(MAX_MANIFEST_BYTES + 10, 0x20));
    });
    const upstream = upstreamFor(server.origin);
    upstreams.push(upstream);
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamBadResponseError);
    await settle(100);
    expect(uncaught).toEqual([]);
  });
});
