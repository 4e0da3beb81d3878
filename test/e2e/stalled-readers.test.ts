/**
 * A client that stops reading a blob body (issue 12 item 9) must not hold the mirror's
 * connection, file and sendfile descriptors forever: after `listen.sendTimeoutSeconds` without
 * taking a byte while the mirror had bytes for it, it is cut off. For every way a body goes out:
 * sendfile and a user-space copy for cached blobs, sendfile and a stream for a download in
 * progress (config `sendfile: false` streams it). Descriptors are counted in /proc/self/fd: the
 * mirror runs in this process.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { get, sha256, waitFor } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { type E2eSetup, startE2e } from './e2e-fixture.js';

const REPO = 'library/stalled';
/** Far more than the loopback socket buffers on both sides hold. */
const LAYER_BYTES = 24 * 1024 * 1024;

let e2e: E2eSetup | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await e2e?.close();
  e2e = undefined;
});

/** This process's open descriptors, number -> what they point at (socket:[inode], a path). */
function openDescriptors(): Map<string, string> {
  const open = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      open.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // Closed while listing.
    }
  }
  return open;
}

/** Descriptors opened since `before` that are still open (the same number pointing at the same thing). */
function openedSince(before: Map<string, string>, except: number | undefined): string[] {
  const now = openDescriptors();
  return [...now].filter(([fd, target]) => before.get(fd) !== target && fd !== String(except)).map(([fd, target]) => `${fd} -> ${target}`);
}

/** Sends a blob GET, takes the first bytes, then stops reading for good; resolves once it has them. */
async function stallingReader(setup: E2eSetup, digest: string): Promise<Socket> {
  const { port } = new URL(setup.mirror.url);
  const socket = connect(Number(port), '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  let received = 0;
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= 64 * 1024) {
        socket.pause();
        resolve();
      }
    });
    socket.write(`GET /v2/${REPO}/blobs/${digest} HTTP/1.1\r\nHost: mirror\r\n\r\n`);
  });
  return socket;
}

const bodies: Array<{ label: string; sendfile: boolean; cached: boolean }> = [
  { label: 'a cached blob sent by sendfile', sendfile: true, cached: true },
  { label: 'a cached blob copied through user space', sendfile: false, cached: true },
  { label: 'a download in progress sent by sendfile', sendfile: true, cached: false },
  { label: 'a download in progress streamed', sendfile: false, cached: false },
];

describe('a client that stops reading', () => {
  for (const { label, sendfile, cached } of bodies) {
    it(`${label}: cut off after listen.sendTimeoutSeconds, its descriptors closed, the mirror serving on`, async () => {
      const setup = await startE2e({ config: { sendfile, listen: { sendTimeoutSeconds: 0.5 } } });
      e2e = setup;
      const image = makeImage({ layers: [LAYER_BYTES], seed: `stalled-${label}` });
      pushImage(setup.fake, REPO, 'latest', image);
      const layer = image.layers[0]!;
      expect((await get(setup.url(`/v2/${REPO}/manifests/latest`))).status).toBe(200);
      if (cached) {
        expect(sha256((await get(setup.url(`/v2/${REPO}/blobs/${layer.digest}`))).body)).toBe(layer.digest);
        await fillsSettled(setup.mirror);
      }
      const before = openDescriptors();

      const reader = await stallingReader(setup, layer.digest);
      const clientFd = (reader as Socket & { _handle?: { fd?: number } })._handle?.fd;
      // The mirror holds descriptors for it now: the connection and the file (for sendfile, its
      // own dup of the socket too; for a download, the fill's own are gone once it is done).
      await fillsSettled(setup.mirror);
      const held = openedSince(before, clientFd);
      expect(held.length, held.join(', ')).toBeGreaterThanOrEqual(2);
      // The mirror closes its side (the client, not reading, may never learn of it).
      await waitFor(() => openedSince(before, clientFd).length === 0, 5_000, `the stalled response to close ${openedSince(before, clientFd).join(', ')}`);

      // The mirror is fine: the blob (filled meanwhile, for a download) is served whole.
      await fillsSettled(setup.mirror);
      const again = await get(setup.url(`/v2/${REPO}/blobs/${layer.digest}`));
      expect(again.status).toBe(200);
      expect(sha256(again.body)).toBe(layer.digest);
    });
  }

  it('a slow reader that keeps taking bytes is not cut off', async () => {
    const setup = await startE2e({ config: { listen: { sendTimeoutSeconds: 0.5 } } });
    e2e = setup;
    const image = makeImage({ layers: [2 * 1024 * 1024], seed: 'slow-reader' });
    pushImage(setup.fake, REPO, 'latest', image);
    const layer = image.layers[0]!;
    expect((await get(setup.url(`/v2/${REPO}/blobs/${layer.digest}`))).status).toBe(200);
    await fillsSettled(setup.mirror);
    const { port } = new URL(setup.mirror.url);
    const socket = connect(Number(port), '127.0.0.1');
    sockets.push(socket);
    let received = 0;
    // One socket read every 50 ms: a couple of seconds for the blob, never 0.5 s without a byte.
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        socket.pause();
        setTimeout(() => socket.resume(), 50);
      });
      socket.once('error', reject);
      socket.once('close', () => (received > layer.size ? resolve() : reject(new Error(`closed after ${received} bytes`))));
    });
    socket.write(`GET /v2/${REPO}/blobs/${layer.digest} HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n`);
    await done;
    expect(received).toBeGreaterThan(layer.size);
  });
});
