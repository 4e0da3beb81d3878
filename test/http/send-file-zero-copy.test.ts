/**
 * The sendfile(2) path for cached blobs (src/http/send-file-zero-copy.ts with the native addon),
 * on real sockets: exact bytes across windows and ranges, a client that stops reading (the
 * socket fills and the transfer waits for it), the thread-pool path for pages not in the page
 * cache, files that end early, clients that leave, keep-alive, no descriptor left open, and
 * TCP_CORK around a body sent whole.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, request } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { blobBodyMethod, sendFileRange } from '../../src/http/send-file.js';
import { bytesSentBySendfile, plainSocketFd, publishedFile, sendFileRangeZeroCopy } from '../../src/http/send-file-zero-copy.js';
import { sendfileAddon, sendfileAddonStatus, type SendfileAddon } from '../../src/http/sendfile-addon.js';
import { getChunks, sha256, waitFor } from '../helpers/http.js';
import { seededBytes } from '../helpers/test-images.js';
import { SERVICES_REQUIRED, serviceMissing } from '../helpers/required-services.js';

const ADDON_PATH = fileURLToPath(new URL('../../dist/native/sendfile.node', import.meta.url));

function compilerAndHeadersPresent(): boolean {
  try {
    execFileSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' });
  } catch {
    return false;
  }
  return existsSync(path.resolve(path.dirname(process.execPath), '../include/node/node_api.h'));
}

describe('sendfile addon availability', () => {
  // In CI (MIRROR_TEST_REQUIRE_SERVICES=1) the compiler is installed and the addon built: it must load.
  it.runIf(process.platform === 'linux' && (SERVICES_REQUIRED || compilerAndHeadersPresent()))('is built and loads wherever a C compiler and Node headers are present', () => {
    expect(sendfileAddonStatus).toEqual({ available: true });
  });

  it('names why cache hits are copied instead', () => {
    expect(blobBodyMethod({ sendfile: false })).toEqual({ method: 'copy', reason: 'config sendfile is false' });
    expect(blobBodyMethod({ sendfile: true, tls: { cert: 'c', key: 'k' } })).toMatchObject({ method: 'copy' });
    expect(blobBodyMethod({ sendfile: true })).toEqual(sendfileAddon ? { method: 'sendfile', reason: null } : { method: 'copy', reason: expect.stringContaining('addon') });
  });
});

type Handler = (addon: SendfileAddon, res: ServerResponse, file: string, start: number, end: number, done: (error?: Error) => void) => void;

serviceMissing(process.platform === 'linux' && !sendfileAddon, `the sendfile addon is not loaded (${JSON.stringify(sendfileAddonStatus)}): npm run build:native`);

describe.runIf(sendfileAddon)('sendFileRange with sendfile(2)', () => {
  const addon = sendfileAddon!;
  // Larger than the addon's window and than any loopback socket buffer, so one response takes
  // several windows and fills the socket when the client pauses.
  const content = seededBytes(16 * 1024 * 1024 + 4099, 'zero-copy');
  let dir: string;
  let server: Server;
  let url: string;
  let port: number;
  let handler: Handler;
  const finished: Array<{ url: string; error?: Error; sendfileBytes: number }> = [];

  const defaultHandler: Handler = (_addon, res, file, start, end, done) => sendFileRange(res, { path: file, start, end, done, sendfile: true });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'zero-copy-'));
    await writeFile(path.join(dir, 'blob'), content);
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const [name, startText, endText, lengthText] = new URL(req.url ?? '/', 'http://test').pathname.slice(1).split('/');
      const start = Number(startText);
      const end = Number(endText);
      res.writeHead(200, { 'Content-Length': lengthText ?? String(end - start + 1) });
      handler(addon, res, path.join(dir, name!), start, end, (error) => finished.push({ url: req.url!, ...(error ? { error } : {}), sendfileBytes: bytesSentBySendfile(res) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    url = `http://127.0.0.1:${port}`;
  });

  beforeEach(() => {
    handler = defaultHandler;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const finishedFor = (requestUrl: string) => finished.filter((entry) => entry.url === requestUrl);

  it('sends every byte with sendfile, across windows, and finishes once', async () => {
    const requestUrl = `/blob/0/${content.length - 1}`;
    const result = await getChunks(`${url}${requestUrl}`);
    expect(result.error).toBeUndefined();
    expect(sha256(Buffer.concat(result.chunks))).toBe(sha256(content));
    await waitFor(() => finishedFor(requestUrl).length === 1, 2_000, 'finish');
    expect(finishedFor(requestUrl)[0]).toEqual({ url: requestUrl, sendfileBytes: content.length });
  });

  it('refuses negative offsets and counts, and handles that are closed', () => {
    expect(() => addon.sendResident(0, 0, -1, 10)).toThrow(RangeError);
    expect(() => addon.sendResident(0, 0, 0, -10)).toThrow(RangeError);
    expect(() => addon.cork(0, 'yes' as unknown as boolean)).toThrow(TypeError);
    // No such descriptor: -EBADF, not a throw.
    expect(addon.cork(1_000_000, true)).toBeLessThan(0);
    const socket = connect(port, '127.0.0.1');
    return new Promise<void>((resolve) => socket.once('connect', () => {
      expect(addon.cork(plainSocketFd(socket)!, true)).toBe(0);
      expect(addon.cork(plainSocketFd(socket)!, false)).toBe(0);
      const transfer = addon.open(plainSocketFd(socket)!);
      expect(() => addon.send(transfer, 0, -1, 1, () => {})).toThrow(RangeError);
      addon.close(transfer);
      addon.close(transfer);
      expect(() => addon.waitWritable(transfer, () => {})).toThrow(/closed/);
      socket.destroy();
      resolve();
    }));
  });

  it.each(['cachestat', 'mincore'])('sends from the loop only pages in the page cache (%s)', async (residency) => {
    // A sparse file's holes are in no page cache until something reads them.
    const sparse = path.join(dir, `sparse-${residency}`);
    await writeFile(sparse, '');
    await truncate(sparse, 1024 * 1024);
    const probe = `
      const addon = require(${JSON.stringify(ADDON_PATH)});
      const fs = require('node:fs');
      const net = require('node:net');
      const server = net.createServer((socket) => socket.resume()).listen(0, '127.0.0.1', () => {
        const client = net.connect(server.address().port, '127.0.0.1', () => {
          const file = fs.openSync(${JSON.stringify(sparse)}, 'r');
          const cold = addon.sendResident(client._handle.fd, file, 0, 65536);
          fs.readSync(file, Buffer.alloc(65536), 0, 65536, 0);
          const warm = addon.sendResident(client._handle.fd, file, 0, 65536);
          console.log(JSON.stringify({ cold: cold === addon.NOT_RESIDENT ? 'not resident' : cold, warm }));
          process.exit(0);
        });
      });`;
    const env = { ...process.env, ...(residency === 'mincore' ? { REGISTRY_MIRROR_SENDFILE_RESIDENCY: 'mincore' } : {}) };
    const output = execFileSync(process.execPath, ['-e', probe], { env, encoding: 'utf8' });
    expect(JSON.parse(output)).toEqual({ cold: 'not resident', warm: 65536 });
  });

  it('sends a range whose ends are not page-aligned', async () => {
    const start = 4097;
    const end = 9 * 1024 * 1024 + 3;
    const result = await getChunks(`${url}/blob/${start}/${end}`);
    expect(Buffer.concat(result.chunks).equals(content.subarray(start, end + 1))).toBe(true);
  });

  it('waits for a client that stops reading, then completes', async () => {
    let waits = 0;
    handler = (base, res, file, start, end, done) =>
      sendFileRangeZeroCopy({ ...base, waitWritable: (transfer, callback) => (waits++, base.waitWritable(transfer, callback)) }, res, res.socket!, { file: publishedFile(file), name: file, start, end, done });
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const received: Buffer[] = [];
    // Stop reading at the very first chunk: loopback is fast enough to take the whole body in
    // the time a polling wait takes to notice it.
    socket.on('data', (chunk) => received.push(chunk) === 1 && socket.pause());
    socket.write(`GET /blob/0/${content.length - 1} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n`);
    await waitFor(() => received.length > 0, 2_000, 'first bytes');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(waits).toBeGreaterThan(0);
    socket.resume();
    await closed;
    expect(sha256(bodyOf(Buffer.concat(received)))).toBe(sha256(content));
  });

  it('sends from the thread pool what is not in the page cache', async () => {
    let diskSends = 0;
    handler = (base, res, file, start, end, done) =>
      sendFileRangeZeroCopy(
        { ...base, sendResident: () => base.NOT_RESIDENT, send: (transfer, fd, offset, count, callback) => (diskSends++, base.send(transfer, fd, offset, count, callback)) },
        res,
        res.socket!,
        { file: publishedFile(file), name: file, start, end, done },
      );
    const requestUrl = `/blob/100/${content.length - 1}`;
    const result = await getChunks(`${url}${requestUrl}`);
    expect(Buffer.concat(result.chunks).equals(content.subarray(100))).toBe(true);
    expect(diskSends).toBeGreaterThanOrEqual(Math.ceil((content.length - 100) / addon.WINDOW_BYTES));
    await waitFor(() => finishedFor(requestUrl).length === 1, 2_000, 'finish');
    expect(finishedFor(requestUrl)[0]!.error).toBeUndefined();
  });

  it('cuts the response short when the file ends before the range does', async () => {
    const short = path.join(dir, 'short');
    await writeFile(short, content.subarray(0, 500_000));
    const requestUrl = '/short/0/999999';
    const result = await getChunks(`${url}${requestUrl}`);
    expect(result.error).toBeDefined();
    expect(Buffer.concat(result.chunks).length).toBeLessThanOrEqual(500_000);
    await waitFor(() => finishedFor(requestUrl).length === 1, 2_000, 'finish');
    expect((finishedFor(requestUrl)[0]!.error as NodeJS.ErrnoException).code).toBe('ENODATA');
  });

  it('cuts the response short when the file cannot be opened', async () => {
    const result = await getChunks(`${url}/missing/0/99`);
    expect(result.error).toBeDefined();
    await waitFor(() => finishedFor('/missing/0/99').length === 1, 2_000, 'finish');
    expect((finishedFor('/missing/0/99')[0]!.error as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('finishes once and closes its descriptors (file and socket) when the client leaves mid-body', async () => {
    const file = path.join(dir, 'left');
    await writeFile(file, content);
    let socketLink: string | undefined;
    handler = (base, res, filePath, start, end, done) => {
      socketLink = readlinkSync(`/proc/self/fd/${plainSocketFd(res.socket!)}`);
      defaultHandler(base, res, filePath, start, end, done);
    };
    const requestUrl = `/left/0/${content.length - 1}`;
    const socket = connect(port, '127.0.0.1');
    socket.write(`GET ${requestUrl} HTTP/1.1\r\nHost: test\r\n\r\n`);
    await new Promise((resolve) => socket.once('data', () => resolve(socket.pause())));
    // The socket fills, so the transfer is waiting on its own dup() of the socket.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(descriptorsLinkingTo(socketLink!)).toBeGreaterThanOrEqual(2);
    socket.destroy();
    await waitFor(() => finishedFor(requestUrl).length === 1, 5_000, 'finish after the client left');
    // Closed by the transfer itself within a turn of the loop, not whenever a GC finalizer runs.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(descriptorsLinkingTo(file)).toBe(0);
    expect(descriptorsLinkingTo(socketLink!)).toBe(0);
    expect(finishedFor(requestUrl).length).toBe(1);
  });

  it('never uses the socket descriptor once Node has closed it (the number may be reused)', async () => {
    const calls: Array<{ destroyed: boolean }> = [];
    handler = (base, res, file, start, end, done) => {
      const socket = res.socket!;
      const wrapped: SendfileAddon = {
        ...base,
        // A short send, so the transfer waits for the socket...
        sendResident: (socketFd, fileFd, offset) => {
          calls.push({ destroyed: socket.destroyed });
          return base.sendResident(socketFd, fileFd, offset, 1000);
        },
        // ...and the wait ends in the very turn in which Node tears the connection down (a
        // timeout, a server shutdown), before the response's 'close' event is emitted.
        waitWritable: (_transfer, callback) => {
          socket.destroy();
          callback(0);
        },
      };
      sendFileRangeZeroCopy(wrapped, res, socket, { file: publishedFile(file), name: file, start, end, done });
    };
    const requestUrl = `/blob/0/${content.length - 1}/${content.length}`;
    const result = await getChunks(`${url}${requestUrl}`);
    expect(result.error).toBeDefined();
    await waitFor(() => finishedFor(requestUrl).length === 1, 2_000, 'finish');
    expect(calls).toEqual([{ destroyed: false }]);
  });

  it('starts the body only after everything Node has queued on the socket', async () => {
    handler = (base, res, file, start, end, done) => {
      // Something else holds the socket's writes back (a cork until the next tick), so the head
      // is still queued in Node when the transfer starts.
      res.socket!.cork();
      process.nextTick(() => res.socket!.uncork());
      sendFileRangeZeroCopy(base, res, res.socket!, { file: publishedFile(file), name: file, start, end, done });
    };
    const response = await getChunks(`${url}/blob/0/99999/100000`);
    expect(response.status).toBe(200);
    expect(Buffer.concat(response.chunks).equals(content.subarray(0, 100_000))).toBe(true);
  });

  it('answers pipelined requests in order, sendfile and copied bodies mixed, to a client that reads late', async () => {
    handler = (base, res, file, start, end, done) => sendFileRange(res, { path: file, start, end, done, sendfile: !res.req.url!.endsWith('?copy') });
    const requests = [
      { path: `/blob/0/${content.length - 1}`, body: content },
      { path: '/blob/5/1000004?copy', body: content.subarray(5, 1_000_005) },
      { path: '/blob/7/3000006', body: content.subarray(7, 3_000_007) },
      { path: '/blob/9/5008?copy', body: content.subarray(9, 5009) },
      { path: '/blob/11/3010', body: content.subarray(11, 3011) },
    ];
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    socket.pause();
    socket.write(requests.map(({ path: requestPath }) => `GET ${requestPath} HTTP/1.1\r\nHost: test\r\n\r\n`).join(''));
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.resume();
    const expectedBytes = requests.reduce((sum, entry) => sum + entry.body.length, 0);
    await waitFor(() => received.reduce((sum, chunk) => sum + chunk.length, 0) > expectedBytes, 10_000, 'all five responses');
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.destroy();
    let rest = Buffer.concat(received);
    for (const { path: requestPath, body } of requests) {
      const headerEnd = rest.indexOf('\r\n\r\n');
      const head = rest.subarray(0, headerEnd).toString('latin1');
      expect(head, requestPath).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)![1]);
      expect(length, requestPath).toBe(body.length);
      expect(rest.subarray(headerEnd + 4, headerEnd + 4 + length).equals(body), requestPath).toBe(true);
      rest = rest.subarray(headerEnd + 4 + length);
    }
    expect(rest.length).toBe(0);
  });

  it('corks a range it can send whole (head and body in full segments) and uncorks after its last byte', async () => {
    const events: string[] = [];
    handler = (base, res, file, start, end, done) => {
      const spy: SendfileAddon = { ...base, cork: (socketFd, on) => (events.push(`cork ${on} at ${bytesSentBySendfile(res)}`), base.cork(socketFd, on)) };
      res.once('finish', () => events.push('finish'));
      sendFileRangeZeroCopy(spy, res, res.socket!, { file: publishedFile(file), name: file, start, end, done });
    };
    const length = 3 * 1024 * 1024;
    const response = await getChunks(`${url}/blob/0/${length - 1}`);
    expect(sha256(Buffer.concat(response.chunks))).toBe(sha256(content.subarray(0, length)));
    expect(events).toEqual(['cork true at 0', `cork false at ${length}`, 'finish']);
  });

  it('does not cork a range still being written: its bytes leave as they arrive', async () => {
    const events: boolean[] = [];
    let available = 100_000;
    let changed: (() => void) | undefined;
    handler = (base, res, file, start, end, done) => {
      const spy: SendfileAddon = { ...base, cork: (socketFd, on) => (events.push(on), base.cork(socketFd, on)) };
      const growing = {
        ...publishedFile(file),
        readable: (position: number, last: number) => Math.max(0, Math.min(available, last + 1) - position),
        onceChanged: (listener: () => void) => ((changed = listener), () => (changed = undefined)),
      };
      sendFileRangeZeroCopy(spy, res, res.socket!, { file: growing, name: file, start, end, done });
    };
    const pending = getChunks(`${url}/blob/0/199999`);
    await waitFor(() => changed !== undefined, 2_000, 'the transfer to wait for more bytes');
    available = 200_000;
    changed!();
    const response = await pending;
    expect(Buffer.concat(response.chunks).equals(content.subarray(0, 200_000))).toBe(true);
    expect(events).toEqual([]);
  });

  it('leaves the connection usable for the next request (keep-alive)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await fetchWith(agent, `${url}/blob/0/999`);
      const second = await fetchWith(agent, `${url}/blob/1000/2999999`);
      expect(first.body.equals(content.subarray(0, 1000))).toBe(true);
      expect(second.body.equals(content.subarray(1000, 3_000_000))).toBe(true);
      expect(second.localPort).toBe(first.localPort);
    } finally {
      agent.destroy();
    }
  });
});

function bodyOf(response: Buffer): Buffer {
  const headerEnd = response.indexOf('\r\n\r\n');
  expect(response.subarray(0, headerEnd).toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  return response.subarray(headerEnd + 4);
}

function descriptorsLinkingTo(target: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === target;
    } catch {
      return false; // closed while we looked
    }
  }).length;
}

function fetchWith(agent: Agent, target: string): Promise<{ body: Buffer; localPort: number }> {
  return new Promise((resolve, reject) => {
    request(target, { agent }, (response) => {
      const chunks: Buffer[] = [];
      const localPort = (response.socket as Socket).localPort!;
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ body: Buffer.concat(chunks), localPort }));
      response.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}
