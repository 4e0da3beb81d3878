/**
 * The two stand-in upstream registries, each a real CNCF distribution 2.8 process
 * (`docker-registry serve`) behind a counting proxy:
 *   hub: bearer-token auth like Docker Hub, blob GETs redirected (307) to a separate CDN origin
 *   gcr: no auth, blobs served by the registry itself
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeLoopbackPort, waitForHttp, type ProcessGroup } from './processes.js';
import { CountingProxy } from './counting-proxy.js';
import { HUB_SERVICE, TOKEN_ISSUER, type TokenServer } from './token-server.js';

export interface RegistryProcess {
  /** The counting proxy in front of the registry: what the mirror and the seeding talk to. */
  readonly proxy: CountingProxy;
  readonly storageRoot: string;
}

export interface HubOptions {
  token: TokenServer;
  cdnUrl: string;
}

export async function startRegistry(processes: ProcessGroup, dir: string, name: string, hub?: HubOptions): Promise<RegistryProcess> {
  const storageRoot = join(dir, 'data');
  mkdirSync(storageRoot, { recursive: true });
  const proxy = await CountingProxy.start(name);
  const port = await freeLoopbackPort();
  const configFile = join(dir, 'config.yml');
  writeFileSync(configFile, registryConfig(storageRoot, port, hub));
  const started = processes.start(name, 'docker-registry', ['serve', configFile], join(dir, 'registry.log'));
  proxy.target = `http://127.0.0.1:${port}`;
  await waitForHttp(`${proxy.target}/v2/`, started);
  return { proxy, storageRoot };
}

/** distribution's YAML config; JSON is valid YAML, which keeps quoting out of the picture. */
function registryConfig(storageRoot: string, port: number, hub?: HubOptions): string {
  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: storageRoot },
      delete: { enabled: true },
      cache: { blobdescriptor: 'inmemory' },
      maintenance: { uploadpurging: { enabled: false } },
      redirect: { disable: !hub },
    },
    http: { addr: `127.0.0.1:${port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } },
  };
  if (hub) {
    config.middleware = { storage: [{ name: 'redirect', options: { baseurl: hub.cdnUrl } }] };
    config.auth = { token: { realm: hub.token.url, service: HUB_SERVICE, issuer: TOKEN_ISSUER, rootcertbundle: hub.token.certFile } };
  }
  return JSON.stringify(config, null, 2);
}
