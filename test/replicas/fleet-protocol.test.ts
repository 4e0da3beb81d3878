/**
 * The internal endpoint a worker or replica streams another's download from
 * (replicas/fleet-routes.ts, replicas/peer-client.ts), in process: the answer names the
 * repository the owner's download comes through, and whether the owner fetched it without the
 * mirror's credentials. A follower that knows the second answers its anonymous clients as the
 * owner does, without an access check that could send it to probe the upstream
 * (pull-through/guarded-registry.ts; the bench's herd made that HEAD when the follower's check
 * came before the owner had stored the repository's verdict).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/domain/digest.js';
import { createMirrorHttpServer } from '../../src/http/http-server.js';
import { publishedFile } from '../../src/http/send-file-zero-copy.js';
import type { RunningDownload } from '../../src/pull-through/blob-download.js';
import type { FleetBlobDownloads } from '../../src/replicas/fleet-downloads.js';
import { mountFleetRoutes } from '../../src/replicas/fleet-routes.js';
import { PeerClient } from '../../src/replicas/peer-client.js';
import type { GrowingFile } from '../../src/storage/content-store.js';

const SECRET = 'fleet-protocol-test-secret-0123456789';
const bytes = Buffer.from('the owner has every byte of this blob already');
const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

let server: Server | undefined;
const clients: PeerClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const client of clients.splice(0)) await client.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/**
 * A download the test advances as the owner's fill would: `written` bytes in its file, the last
 * byte of the blob readable only once `verify` ran (the digest check), every reader cut by `fail`.
 */
function steppedDownload(file: string) {
  let written = 0;
  let verified = false;
  let failure: Error | undefined;
  const listeners = new Set<() => void>();
  const changed = () => [...listeners].forEach((listener) => (listeners.delete(listener), listener()));
  const growing: GrowingFile = {
    openSync: () => openSync(file, 'r'),
    readable: (position, end) => {
      if (failure) throw failure;
      return Math.max(0, Math.min(written, verified ? end + 1 : end) - position);
    },
    onceChanged: (listener) => (listeners.add(listener), () => listeners.delete(listener)),
    finalSize: () => (verified ? bytes.length : undefined),
    files: () => ({ writing: file, published: `${file}.published` }),
  };
  return {
    growing,
    write: (count: number) => ((written = count), changed()),
    verify: () => ((verified = true), changed()),
    fail: (error: Error) => ((failure = error), changed()),
  };
}

/** An owner whose one download is `anonymous` or not, all of it written, unless `growing` says otherwise. */
async function owner(anonymous: boolean, growing?: GrowingFile, size: number | undefined = bytes.length): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-protocol-'));
  dirs.push(dir);
  const file = path.join(dir, 'blob');
  writeFileSync(file, bytes);
  const download: RunningDownload = {
    kind: 'download', digest, via: 'docker.io/library/owned', size, written: bytes.length, anonymous,
    settled: new Promise(() => {}),
    growing: growing ?? publishedFile(file),
  };
  const downloads = { inProgress: async () => download, relayFor: async () => undefined } as unknown as FleetBlobDownloads;
  const app = new Hono();
  mountFleetRoutes(app, { secret: SECRET, downloads, sendfile: false });
  server = createMirrorHttpServer(app.fetch, { defaultHost: '127.0.0.1' }) as Server;
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function peers(): PeerClient {
  const client = new PeerClient(SECRET, { connectMs: 2_000, headersMs: 2_000, idleMs: 2_000 });
  clients.push(client);
  return client;
}

describe('the fleet blob endpoint', () => {
  for (const anonymous of [true, false]) {
    it(`says whether the owner fetched without credentials (${anonymous})`, async () => {
      const answer = await peers().download(await owner(anonymous), digest, AbortSignal.timeout(5_000));
      const chunks: Buffer[] = [];
      for await (const chunk of answer.body) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
      expect(answer.via).toBe('docker.io/library/owned');
      expect(answer.anonymous === true).toBe(anonymous);
    });
  }

  it("tells a worker of its machine how far the file may be read instead of sending the bytes, the size last and only after the digest check", async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'fleet-protocol-')), 'writing');
    dirs.push(path.dirname(file));
    const download = steppedDownload(file);
    const answer = await peers().download(await owner(false, download.growing), digest, AbortSignal.timeout(5_000), true);
    expect(answer.progress).toBe(true);
    expect(answer.size).toBe(bytes.length);
    expect(answer.files).toEqual({ writing: file, published: `${file}.published` });
    const records = readRecords(answer.body);
    download.write(10);
    expect(await records.next()).toBe('10');
    download.write(bytes.length);
    expect(await records.next()).toBe(String(bytes.length - 1));
    download.verify();
    expect(await records.next()).toBe(String(bytes.length));
    expect(await records.ended).toBe(`10\n${bytes.length - 1}\n${bytes.length}\n`);
  });

  it('cuts the progress when the download fails: never a clean end short of the size', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'fleet-protocol-')), 'writing');
    dirs.push(path.dirname(file));
    const download = steppedDownload(file);
    const answer = await peers().download(await owner(false, download.growing), digest, AbortSignal.timeout(5_000), true);
    const records = readRecords(answer.body);
    download.write(10);
    expect(await records.next()).toBe('10');
    download.fail(new Error('the digest did not match'));
    await expect(records.ended).rejects.toThrow();
  });

  it('sends the bytes to a replica, and to a worker when the size is not known', async () => {
    for (const [wantFiles, size] of [[false, bytes.length], [true, undefined]] as const) {
      const answer = await peers().download(await owner(false, undefined, size), digest, AbortSignal.timeout(5_000), wantFiles);
      expect(answer.progress).not.toBe(true);
      const chunks: Buffer[] = [];
      for await (const chunk of answer.body) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
      server?.closeAllConnections();
      server?.close();
    }
  });
});

describe('a peer answer that announces progress', () => {
  for (const [name, headers] of [
    ['a size that is not a count', { 'x-mirror-fill-progress': '12abc', 'x-mirror-fill-writing': '%2Fw', 'x-mirror-fill-published': '%2Fp' }],
    ['a size past 2^53', { 'x-mirror-fill-progress': '9999999999999999', 'x-mirror-fill-writing': '%2Fw', 'x-mirror-fill-published': '%2Fp' }],
    ['no files', { 'x-mirror-fill-progress': '45' }],
  ] as const) {
    it(`is refused with ${name}: there is nothing to read the bytes from`, async () => {
      server = createServer((_request, response) => response.writeHead(200, { 'x-mirror-fill-via': 'docker.io/library/owned', ...headers }).end('45\n'));
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const ownerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await expect(peers().download(ownerUrl, digest, AbortSignal.timeout(5_000), true)).rejects.toThrow(/sent progress for sha256:[0-9a-f]{64} without a size or files/);
    });
  }
});

/** The progress records of `body` one at a time (`next`), and all the text once it ends (`ended`). */
function readRecords(body: Readable) {
  let text = '';
  let taken = 0;
  let wake: (() => void) | undefined;
  body.setEncoding('latin1');
  body.on('data', (chunk: string) => ((text += chunk), wake?.()));
  const ended = new Promise<string>((resolve, reject) => {
    body.on('end', () => resolve(text));
    body.on('error', reject);
  });
  ended.catch(() => {});
  const next = async (): Promise<string> => {
    for (;;) {
      const end = text.indexOf('\n', taken);
      if (end >= 0) {
        const record = text.slice(taken, end);
        taken = end + 1;
        return record;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return { next, ended };
}
