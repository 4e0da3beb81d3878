/**
 * Upload sessions live in the metadata store and their bytes in a resumable writer (issue 14
 * "Upload sessions"): any process sharing the cache continues a session, a process killed with
 * kill -9 in the middle of a chunk leaves nothing visible, and after a restart the upload
 * continues from the bytes actually received (the writer's, re-hashed), or starts over.
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { sha256, waitFor } from '../helpers/http.js';
import { seededBytes } from '../helpers/test-images.js';
import { digestOf } from '../../src/domain/digest.js';
import { BlobUploadUnknownError } from '../../src/domain/errors.js';
import { FILE_STORE_PIECES, FLUSH_EVERY_BYTES } from '../../src/hosted/upload-body.js';
import { UploadSessions } from '../../src/hosted/upload-sessions.js';
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import type { ContentStore } from '../../src/storage/content-store.js';
import { FsContentStore } from '../../src/storage/fs/fs-content-store.js';
import { call, errorCodes, header, withDigest } from './hosted-fixture.js';
import { serveProcess, type ServeProcess } from './serve-process.js';

const MiB = 1024 * 1024;
let workDir: string | undefined;
const servers: ServeProcess[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.kill()));
  if (workDir) await rm(workDir, { recursive: true, force: true });
  workDir = undefined;
});

async function start(name: string): Promise<ServeProcess> {
  const server = await serveProcess(workDir!, name, {
    cache: { dir: path.join(workDir!, 'cache'), maxBytes: '1GiB' },
    defaultUpstream: null,
    upstreams: {},
    hosted: { allowAnonymousPush: true },
  });
  servers.push(server);
  return server;
}

const patch = (location: string, body: Buffer, start: number) =>
  call(location, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + body.length - 1}` }, body });
const on = (server: ServeProcess, location: string) => `${server.url}${new URL(location).pathname}`;

/** A request whose head and first 10 body bytes are sent now; finish() sends the rest and resolves the whole answer. */
function startedExchange(server: ServeProcess, head: string, body: Buffer): { finish(): Promise<string> } {
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
  let answer = '';
  const ended = new Promise<string>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => void (answer += chunk.toString('latin1')));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
  socket.write(head);
  socket.write(body.subarray(0, 10));
  return {
    finish() {
      socket.write(body.subarray(10));
      return ended;
    },
  };
}

function uploadFiles(): Array<{ name: string; size: number }> {
  const dir = path.join(workDir!, 'cache', 'uploads');
  return readdirSync(dir).map((name) => ({ name, size: statSync(path.join(dir, name)).size }));
}

describe('upload sessions across processes', () => {
  it('two servers on one cache take turns on one chunked upload', async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-uploads-'));
    const [a, b] = [await start('a'), await start('b')];
    const bytes = seededBytes(3 * MiB + 17, 'turns');
    const location = header(await call(`${a.url}/v2/team/app/blobs/uploads/`, { method: 'POST' }), 'location')!;
    const chunks = [[a, 0, MiB], [b, MiB, 2 * MiB], [a, 2 * MiB, 2 * MiB + 5], [b, 2 * MiB + 5, bytes.length]] as const;
    for (const [server, from, to] of chunks) {
      const response = await patch(on(server, location), bytes.subarray(from, to), from);
      expect([response.status, header(response, 'range')], `${from}-${to}`).toEqual([202, `0-${to - 1}`]);
    }
    expect(header(await call(on(a, location)), 'range')).toBe(`0-${bytes.length - 1}`);
    expect((await call(withDigest(on(a, location), sha256(bytes)), { method: 'PUT' })).status).toBe(201);
    expect((await call(`${b.url}/v2/team/app/blobs/${sha256(bytes)}`)).body.equals(bytes)).toBe(true);
  });

  it('a chunk sent to two servers at once: the second waits for the first and appends after it, as in one process; nothing is published under a digest its bytes do not have', async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-uploads-'));
    const [a, b] = [await start('a'), await start('b')];
    const [mine, theirs] = [seededBytes(100_000, 'mine'), seededBytes(100_000, 'theirs')];
    const location = header(await call(`${a.url}/v2/team/app/blobs/uploads/`, { method: 'POST' }), 'location')!;
    // Both heads and a first piece of each body (streamed chunks, no Content-Range), so both requests are in the middle at once.
    const head = (server: ServeProcess) => `PATCH ${new URL(location).pathname} HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${mine.length}\r\nConnection: close\r\n\r\n`;
    const intoA = startedExchange(a, head(a), mine);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const intoB = startedExchange(b, head(b), theirs);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await intoA.finish()).toMatch(new RegExp(`^HTTP/1\\.1 202 [^]*\r\nrange: 0-${mine.length - 1}\r\n`, 'i'));
    expect(await intoB.finish()).toMatch(new RegExp(`^HTTP/1\\.1 202 [^]*\r\nrange: 0-${mine.length + theirs.length - 1}\r\n`, 'i'));
    // Before the claim, both wrote at offset 0 and this PUT published the other's bytes under mine's digest.
    expect(errorCodes(await call(withDigest(on(a, location), sha256(mine)), { method: 'PUT' }))).toEqual(['DIGEST_INVALID']);
    expect((await call(`${b.url}/v2/team/app/blobs/${sha256(mine)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('kill -9 in the middle of a chunk: nothing visible; after a restart the upload continues from what was received, or starts over', async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-uploads-'));
    const first = await start('first');
    const bytes = seededBytes(20 * MiB, 'kill-9');
    const location = header(await call(`${first.url}/v2/team/app/blobs/uploads/`, { method: 'POST' }), 'location')!;
    expect((await patch(location, bytes.subarray(0, MiB), 0)).status).toBe(202);
    // A chunk without Content-Range whose body stops after 9 MiB more: pieces reach the writer, then the process dies.
    const stalled = new Readable({ read() {} });
    stalled.push(bytes.subarray(MiB, 10 * MiB));
    const inFlight = request(location, { method: 'PATCH', body: stalled, headersTimeout: 60_000 }).catch((error: unknown) => error);
    await waitFor(() => uploadFiles().some((file) => file.size >= 9 * MiB), 20_000, 'a piece of the second chunk on disk');
    await first.kill();
    expect(await inFlight).toBeInstanceOf(Error);

    const second = await start('second');
    expect((await call(`${second.url}/v2/team/app/blobs/${sha256(bytes)}`, { method: 'HEAD' })).status).toBe(404);
    expect(errorCodes(await call(`${second.url}/v2/team/app/tags/list`))).toEqual(['NAME_UNKNOWN']);
    const status = await call(on(second, location));
    expect(status.status).toBe(204);
    const received = Number(/^0-(\d+)$/.exec(header(status, 'range')!)![1]) + 1;
    // What reached the disk before the kill (at least what the wait saw), never more than was sent.
    expect(received).toBeGreaterThanOrEqual(9 * MiB);
    expect(received).toBeLessThanOrEqual(10 * MiB);
    expect((await patch(on(second, location), bytes.subarray(received), received)).status).toBe(202);
    expect((await call(withDigest(on(second, location), sha256(bytes)), { method: 'PUT' })).status).toBe(201);
    expect((await call(`${second.url}/v2/team/app/blobs/${sha256(bytes)}`)).body.equals(bytes)).toBe(true);
    // Or a client that starts over: a new upload of the whole blob.
    const again = seededBytes(2 * MiB, 'kill-9-again');
    const restarted = header(await call(`${second.url}/v2/team/app/blobs/uploads/`, { method: 'POST' }), 'location')!;
    expect((await call(withDigest(restarted, sha256(again)), { method: 'PUT', body: again })).status).toBe(201);
  });
});

describe('UploadSessions sharing one store (two processes in one)', () => {
  /** Descriptors this process holds open on files of this test's store (an upload file, or the blob it became). */
  const openUploadFiles = () => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path.join(workDir!, 'cache'));
    } catch {
      return false;
    }
  }).length;
  const body = (bytes: Buffer, start: number) => ({ stream: Readable.from([bytes]), range: { start, end: start + bytes.length - 1 } });

  it.runIf(process.platform === 'linux')('a session finished elsewhere is let go of here at the next expiry run; a stale writer is resumed, not trusted', async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-sessions-'));
    const content = await FsContentStore.open(path.join(workDir, 'cache'));
    const metadata = new MemoryMetadataStore();
    const options = { content, uploads: metadata.uploads, expiryMs: 3600_000, pieces: FILE_STORE_PIECES };
    const [a, b] = [new UploadSessions(options), new UploadSessions(options)];
    const bytes = seededBytes(300_000, 'sessions');
    const filesBefore = openUploadFiles();
    const session = await a.start('team/app');
    await a.append('team/app', session.id, body(bytes.subarray(0, 100_000), 0));
    await b.append('team/app', session.id, body(bytes.subarray(100_000, 200_000), 100_000));
    // a's writer counts 100 000 bytes, the session 200 000: a resumes instead of writing at the wrong offset.
    await a.append('team/app', session.id, body(bytes.subarray(200_000), 200_000));
    expect((await b.finish('team/app', session.id, digestOf(bytes), { stream: Readable.from([]) })).size).toBe(bytes.length);
    expect(openUploadFiles()).toBeGreaterThan(filesBefore);
    await a.expire();
    expect(openUploadFiles()).toBe(filesBefore);
    await expect(a.status('team/app', session.id)).rejects.toThrow(BlobUploadUnknownError);
    await content.close();
  });

  it('one chunk sent to two processes at once: one writes it, the other waits its turn and is told 416; the blob published is the bytes hashed', async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-sessions-'));
    const content = await FsContentStore.open(path.join(workDir, 'cache'));
    const metadata = new MemoryMetadataStore();
    const options = { content, uploads: metadata.uploads, expiryMs: 3600_000, pieces: FILE_STORE_PIECES };
    const [a, b] = [new UploadSessions(options), new UploadSessions(options)];
    const [mine, theirs] = [seededBytes(100_000, 'mine'), seededBytes(100_000, 'theirs')];
    const session = await a.start('team/app');
    const [toA, toB] = [new PassThrough(), new PassThrough()];
    const wholeChunk = { start: 0, end: mine.length - 1 };
    const intoA = a.append('team/app', session.id, { stream: toA, range: wholeChunk });
    toA.write(mine.subarray(0, 10));
    const intoB = b.append('team/app', session.id, { stream: toB, range: wholeChunk }).catch((error: unknown) => error);
    toB.write(theirs.subarray(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    toA.end(mine.subarray(10));
    expect((await intoA).offset).toBe(mine.length);
    toB.end(theirs.subarray(10));
    expect(await intoB).toMatchObject({ code: 'BLOB_UPLOAD_INVALID', received: mine.length });
    expect(await a.finish('team/app', session.id, digestOf(mine), { stream: Readable.from([]) })).toEqual({ digest: digestOf(mine), size: mine.length });
    expect((await content.read(digestOf(mine)))!.equals(mine)).toBe(true);
    await content.close();
  });

  it('a blob the store holds already is not flushed to disk while it arrives again (its bytes are dropped at the commit)', async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-sessions-'));
    const content = await FsContentStore.open(path.join(workDir, 'cache'));
    let flushes = 0;
    const counting: ContentStore = Object.assign(Object.create(content) as ContentStore, {
      writer: async (options?: Parameters<ContentStore['writer']>[0]) => {
        const writer = await content.writer(options);
        const flush = writer.flushSoFar!.bind(writer);
        return Object.assign(writer, { flushSoFar: () => ((flushes += 1), flush()) });
      },
    });
    const sessions = new UploadSessions({ content: counting, uploads: new MemoryMetadataStore().uploads, expiryMs: 3600_000, pieces: FILE_STORE_PIECES });
    const bytes = Buffer.alloc(FLUSH_EVERY_BYTES + MiB, 7);
    const push = async () => (await sessions.finish('team/app', (await sessions.start('team/app')).id, digestOf(bytes), { stream: Readable.from([bytes]), length: bytes.length })).size;
    expect(await push()).toBe(bytes.length);
    expect(flushes).toBe(1);
    expect(await push()).toBe(bytes.length);
    expect(flushes).toBe(1);
    await content.close();
  });
});
