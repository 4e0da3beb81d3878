/**
 * Starts the real mirror (composeMirror + @hono/node-server) on 127.0.0.1 port 0 with a fresh
 * cache directory, for end-to-end tests through real sockets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { parseMirrorConfig, type MirrorConfig } from '../../src/config/mirror-config.js';
import { composeMirror, type Mirror } from '../../src/compose.js';
import { createMirrorHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/log.js';

export interface MirrorUnderTest {
  url: string;
  config: MirrorConfig;
  mirror: Mirror;
  cacheDir: string;
  /** Stops the server, keeps the cache directory (for restart tests). */
  stop(): Promise<void>;
  /** Stops the server and removes the cache directory. */
  close(): Promise<void>;
}

export type RawConfig = Record<string, unknown> & { upstreams: Record<string, Record<string, unknown>> };

export async function startMirror(raw: RawConfig, options: { cacheDir?: string } = {}): Promise<MirrorUnderTest> {
  const cacheDir = options.cacheDir ?? (await mkdtemp(path.join(tmpdir(), 'mirror-test-')));
  const config = parseMirrorConfig({
    listen: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    ...raw,
    cache: { maxBytes: 10 * 2 ** 30, ...(raw.cache as object | undefined), dir: cacheDir },
    // Off unless a test turns it on: the suites count upstream requests blob by blob, and a
    // prefetch (pull-through/manifest-prefetch.ts) fetches an image's blobs with its manifest.
    fetch: { prefetch: false, ...(raw.fetch as object | undefined) },
  });
  const mirror = await composeMirror(config, createLogger(config.log.level));
  const server = await listen(mirror);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const stop = async () => {
    (server as import('node:http').Server).closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await mirror.close();
  };
  return {
    url, config, mirror, cacheDir, stop,
    async close() {
      await stop();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/** The server `serve` runs (http/http-server.ts), with its warm-blob lane, on a port from the OS. */
function listen(mirror: Mirror): Promise<import('node:http').Server> {
  return new Promise((resolve, reject) => {
    const server = createMirrorHttpServer(mirror.app.fetch, { defaultHost: '127.0.0.1', ...(mirror.lane ? { lane: mirror.lane } : {}) }) as import('node:http').Server;
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Resolves once no cache fill is under way and the budget is idle. A client has its last byte
 * as soon as the digest is checked, while the fill still fsyncs, publishes and records the blob
 * (pull-through/blob-download.ts): a test that looks at the cache after a GET waits for this.
 */
export async function fillsSettled(under: { mirror: Pick<Mirror, 'downloads' | 'budget'> }, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (under.mirror.downloads.list().length > 0) {
    if (Date.now() >= deadline) throw new Error(`fillsSettled: downloads still running after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await under.mirror.budget.idle();
}
