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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
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

/** An owner whose one download is `anonymous` or not, all of it written. */
async function owner(anonymous: boolean): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-protocol-'));
  dirs.push(dir);
  const file = path.join(dir, 'blob');
  writeFileSync(file, bytes);
  const download: RunningDownload = {
    kind: 'download', digest, via: 'docker.io/library/owned', size: bytes.length, written: bytes.length, anonymous,
    settled: new Promise(() => {}),
    growing: publishedFile(file),
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
});
