/**
 * A layer larger than 4 GiB streams through an upload without being buffered (issue 14: "Large
 * layers (5 GiB and more) stream without buffering"): 5 GiB + 1 byte PATCHed as docker sends a
 * layer (chunked encoding, no Content-Range), closed with PUT ?digest=, to a `serve` process
 * whose resident memory is sampled throughout. The body is zeros from one reused buffer, so the
 * client costs next to nothing; the mirror still writes and hashes every byte. Then HEAD and a
 * ranged GET past the 4 GiB mark read it back.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { call, header, withDigest } from './hosted-fixture.js';
import { serveProcess, type ServeProcess } from './serve-process.js';

const MiB = 1024 * 1024;
const SIZE = 5 * 1024 * MiB + 1;
const ZEROS = Buffer.alloc(MiB);

let workDir: string | undefined;
let server: ServeProcess | undefined;
afterEach(async () => {
  await server?.kill();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function zeros(size: number): Readable {
  let left = size;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const chunk = left >= MiB ? ZEROS : ZEROS.subarray(0, left);
      left -= chunk.length;
      this.push(chunk);
    },
  });
}

function zerosDigest(size: number): string {
  const hash = createHash('sha256');
  for (let left = size; left > 0; left -= Math.min(left, MiB)) hash.update(left >= MiB ? ZEROS : ZEROS.subarray(0, left));
  return `sha256:${hash.digest('hex')}`;
}

function rssBytes(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

describe('a 5 GiB layer', () => {
  it.runIf(process.platform === 'linux')('streams through a chunked-encoding PATCH with the server\'s memory bounded, and reads back past 4 GiB', async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-large-'));
    server = await serveProcess(workDir, 'large', { cache: { dir: path.join(workDir, 'cache'), maxBytes: '1GiB' }, defaultUpstream: null, upstreams: {}, hosted: { allowAnonymousPush: true } }, { serveArgs: ['--workers', '1'] });
    // One process, so this is the one that receives the layer (with workers, it is the primary).
    const pid = server.child.pid!;
    const digest = zerosDigest(SIZE);
    const location = header(await call(`${server.url}/v2/team/big/blobs/uploads/`, { method: 'POST' }), 'location')!;
    const before = rssBytes(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
    try {
      const patched = await call(location, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: zeros(SIZE) });
      expect([patched.status, header(patched, 'range')]).toEqual([202, `0-${SIZE - 1}`]);
      expect((await call(withDigest(location, digest), { method: 'PUT' })).status).toBe(201);
    } finally {
      clearInterval(sampler);
    }
    // Two 8 MiB pieces per upload and socket buffers; buffering the layer would take gigabytes.
    expect(peak - before, `RSS grew from ${before} to ${peak}`).toBeLessThan(128 * MiB);
    const head = await call(`${server.url}/v2/team/big/blobs/${digest}`, { method: 'HEAD' });
    expect([head.status, header(head, 'content-length')]).toEqual([200, String(SIZE)]);
    const tail = await call(`${server.url}/v2/team/big/blobs/${digest}`, { headers: { range: `bytes=${SIZE - 100}-` } });
    expect([tail.status, header(tail, 'content-range'), tail.body.length]).toEqual([206, `bytes ${SIZE - 100}-${SIZE - 1}/${SIZE}`, 100]);
    expect(tail.body.every((byte) => byte === 0)).toBe(true);
  }, 600_000);
});
