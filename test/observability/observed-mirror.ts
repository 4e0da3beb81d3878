/**
 * A fake upstream and the real mirror in front of it, with the mirror's log lines captured in
 * memory, plus a helper that pulls an image the way a client does (manifest, config, layers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { serve, type ServerType } from '@hono/node-server';
import { composeMirror, type Mirror } from '../../src/compose.js';
import { parseMirrorConfig } from '../../src/config/mirror-config.js';
import { createLogger } from '../../src/log.js';
import { type FakeRegistry, type FakeRegistryOptions, startFakeRegistry } from '../helpers/fake-registry.js';
import { get } from '../helpers/http.js';
import type { TestImage } from '../helpers/test-images.js';

export interface ObservedMirror {
  fake: FakeRegistry;
  mirror: Mirror;
  url: string;
  cacheDir: string;
  /** Every log line written so far, raw. */
  logLines(): string[];
  close(): Promise<void>;
}

export interface ObservedOptions {
  fake?: FakeRegistryOptions;
  /** Extra keys for the docker.io upstream (username, password). */
  upstream?: Record<string, unknown>;
  config?: Record<string, unknown>;
  logLevel?: string;
}

export async function startObserved(options: ObservedOptions = {}): Promise<ObservedMirror> {
  const fake = await startFakeRegistry({ auth: 'bearer', redirectBlobsToCdn: true, ...options.fake });
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'mirror-observed-'));
  const chunks: string[] = [];
  const sink = new Writable({ write(chunk, _encoding, done) { chunks.push(String(chunk)); done(); } });
  const config = parseMirrorConfig({
    listen: { host: '127.0.0.1', port: 0 },
    metadata: { store: 'memory' },
    ...options.config,
    // Off unless a test turns it on, as in test/helpers/mirror-under-test.ts.
    fetch: { prefetch: false, ...(options.config?.fetch as object | undefined) },
    log: { level: options.logLevel ?? 'debug' },
    cache: { dir: cacheDir, maxBytes: 2 ** 30 },
    upstreams: { 'docker.io': { url: fake.url, tokenRealms: [new URL(fake.tokenUrl).host], redirectHosts: [new URL(fake.cdnUrl).host], ...options.upstream } },
  });
  const mirror = await composeMirror(config, createLogger(config.log.level, sink));
  const server = await listen(mirror);
  return {
    fake,
    mirror,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cacheDir,
    logLines: () => chunks.join('').split('\n').filter((line) => line !== ''),
    async close() {
      (server as import('node:http').Server).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await mirror.close();
      await fake.close();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/** Pulls manifest, config and layers through the mirror; fails the test on any non-200. */
export async function pullImage(base: string, repo: string, tag: string, image: TestImage, headers: Record<string, string> = {}): Promise<void> {
  const manifest = await get(`${base}/v2/${repo}/manifests/${tag}`, { accept: image.manifest.mediaType, ...headers });
  if (manifest.status !== 200) throw new Error(`manifest ${repo}:${tag} answered ${manifest.status}: ${manifest.body.toString()}`);
  for (const blob of [image.config, ...image.layers]) {
    const response = await get(`${base}/v2/${repo}/blobs/${blob.digest}`, headers);
    if (response.status !== 200 || !response.body.equals(blob.bytes)) throw new Error(`blob ${blob.digest} answered ${response.status} with ${response.body.length} bytes`);
  }
}

function listen(mirror: Mirror): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: mirror.app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(server));
    server.once('error', reject);
  });
}
