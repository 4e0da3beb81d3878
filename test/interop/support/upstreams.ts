/**
 * The whole upstream side of the interop tests, on 127.0.0.1 with OS-assigned ports and all
 * state in one temporary directory:
 *
 *   token server ── realm of ──> hub registry (docker-registry, auth.token) <── hub proxy (counts)
 *                                   └─ blob GET: 307 ──> CDN (static files over hub's storage, counts)
 *   gcr registry (docker-registry, no auth) <── gcr proxy (counts)
 *
 * then seeds the catalog through the proxies. Proxy counters are read by tests; call
 * `stop()` to end every server and child process (children by PID).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessGroup } from './processes.js';
import { startTokenServer, HUB_USER, HUB_PASSWORD, type TokenServer } from './token-server.js';
import { startCdnServer, type CdnServer } from './cdn-server.js';
import { startRegistry, type RegistryProcess } from './registries.js';
import { buildCatalog, type CatalogImage } from './catalog.js';
import { PushClient } from './push-client.js';

export interface Upstreams {
  readonly token: TokenServer;
  readonly cdn: CdnServer;
  readonly hub: RegistryProcess;
  readonly gcr: RegistryProcess;
  readonly catalog: CatalogImage[];
  readonly processes: ProcessGroup;
  stop(): Promise<void>;
}

export async function startUpstreams(rootDir: string): Promise<Upstreams> {
  const processes = new ProcessGroup();
  const closers: Array<() => Promise<void>> = [];
  const stop = async () => {
    await processes.stopAll();
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const dirs = { token: join(rootDir, 'token'), hub: join(rootDir, 'hub'), gcr: join(rootDir, 'gcr') };
    Object.values(dirs).forEach((dir) => mkdirSync(dir, { recursive: true }));
    const token = await startTokenServer(dirs.token);
    closers.push(() => token.close());
    const cdn = await startCdnServer(join(dirs.hub, 'data'));
    closers.push(() => cdn.close());
    const hub = await startRegistry(processes, dirs.hub, 'hub', { token, cdnUrl: cdn.url });
    closers.push(() => hub.proxy.close());
    const gcr = await startRegistry(processes, dirs.gcr, 'gcr');
    closers.push(() => gcr.proxy.close());
    const catalog = buildCatalog();
    await seed(catalog, hub, gcr);
    return { token, cdn, hub, gcr, catalog, processes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function seed(catalog: CatalogImage[], hub: RegistryProcess, gcr: RegistryProcess): Promise<void> {
  const clients = {
    hub: new PushClient(hub.proxy.url, { username: HUB_USER, password: HUB_PASSWORD }),
    gcr: new PushClient(gcr.proxy.url),
  };
  for (const entry of catalog) await clients[entry.upstream].pushImage(entry.repo, entry.tag, entry.image);
}
