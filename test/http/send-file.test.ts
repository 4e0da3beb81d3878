import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendFileRange } from '../../src/http/send-file.js';
import { getChunks, sha256, waitFor } from '../helpers/http.js';
import { seededBytes } from '../helpers/test-images.js';

describe('sendFileRange', () => {
  const content = seededBytes(3 * 1024 * 1024 + 17, 'send-file');
  let dir: string;
  let server: Server;
  let url: string;
  const releases: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'send-file-'));
    await writeFile(path.join(dir, 'blob'), content);
    server = createServer((req, res) => {
      const [name, startText, endText] = (req.url ?? '').slice(1).split('/');
      const start = Number(startText);
      const end = Number(endText);
      res.writeHead(200, { 'Content-Length': String(end - start + 1) });
      sendFileRange(res, { path: path.join(dir, name!), start, end, done: () => releases.push(req.url!), sendfile: false });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('sends exactly the bytes of the file, across many chunks, and releases once', async () => {
    const result = await getChunks(`${url}/blob/0/${content.length - 1}`);
    expect(result.error).toBeUndefined();
    expect(sha256(Buffer.concat(result.chunks))).toBe(sha256(content));
    await waitFor(() => releases.filter((entry) => entry === `/blob/0/${content.length - 1}`).length === 1, 2_000, 'release');
  });

  it('sends a range that starts and ends inside chunks', async () => {
    const start = 300_000;
    const end = 2_000_000;
    const result = await getChunks(`${url}/blob/${start}/${end}`);
    expect(Buffer.concat(result.chunks).equals(content.subarray(start, end + 1))).toBe(true);
  });

  it('cuts the response short when the file cannot be read, and still releases', async () => {
    const result = await getChunks(`${url}/missing/0/99`);
    expect(Buffer.concat(result.chunks).length).toBeLessThan(100);
    expect(result.error).toBeDefined();
    await waitFor(() => releases.includes('/missing/0/99'), 2_000, 'release after a failed open');
  });

  it('releases the file when the client goes away mid-body', async () => {
    const controller = new AbortController();
    const response = await fetch(`${url}/blob/0/${content.length - 1}`, { signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await waitFor(() => releases.filter((entry) => entry === `/blob/0/${content.length - 1}`).length === 2, 5_000, 'release after the client left');
  });
});
