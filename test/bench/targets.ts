/**
 * The servers a scenario measures, all on 127.0.0.1 with OS-assigned ports and their state
 * under the run's temporary directory:
 *   mirror     this project, `node dist/main.js serve` (the interop launcher)
 *   reference  CNCF distribution 2.8 in proxy mode (`proxy.remoteurl` = hub, with credentials)
 *   nginx      nginx with sendfile serving the seeded blob files at registry paths: the ceiling
 *   mirror+nginx  the mirror with accel.redirectPrefix behind nginx configured by
 *              deploy/nginx/registry-mirror.conf (nginx sends cached blobs with sendfile)
 *   direct     no server: the client pulls from hub itself (direct.ts), the peer of cold pulls
 *   node-sendfile  Node's HTTP server with the mirror's sendfile path and nothing else
 *              (node-sendfile-server.ts): the ceiling of a server built on Node's HTTP module
 * `reset()` makes a server cold: stop it by PID, wipe its cache, start it again (new port).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOG_LEVELS } from '../../src/config/schema.js';
import { ProcessGroup, freeLoopbackPort, stopByPid, waitForHttp, type StartedProcess } from '../interop/support/processes.js';
import { startMirror, type RunningMirror } from '../interop/support/mirror.js';
import { ACCEL_PREFIX, startNginxFront, type NginxFront } from '../interop/support/nginx-front.js';
import { HUB_PASSWORD, HUB_USER } from '../interop/support/token-server.js';
import type { BenchUpstreams } from './bench-upstreams.js';

export type TargetName = 'mirror' | 'mirror+nginx' | 'reference' | 'nginx' | 'node-sendfile' | 'direct';

export interface Target {
  readonly name: TargetName;
  /** Base URL of the running server (changes on every reset). */
  readonly url: string;
  readonly pid: number;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** The hub redirects blobs to the CDN tap on loopback, which the config must name (dial-guard.ts). */
export function cdnHosts(env: BenchUpstreams): string[] {
  return [new URL(env.cdnTap.url).host];
}

/** An upstream without auth or redirects in place of hub (the cold-registry scenario's registry:2). */
export interface PlainRemote {
  url: string;
}

/** `BENCH_MIRROR_LOG_LEVEL=info` logs every request of the mirror target (docs/benchmarks.md); warn otherwise. */
function mirrorLogLevel(): (typeof LOG_LEVELS)[number] {
  const asked = process.env.BENCH_MIRROR_LOG_LEVEL;
  if (asked === undefined) return 'warn';
  const level = LOG_LEVELS.find((name) => name === asked);
  if (!level) throw new Error(`BENCH_MIRROR_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${asked}`);
  return level;
}

export async function startMirrorTarget(dir: string, env: BenchUpstreams, remote?: PlainRemote): Promise<Target> {
  const overrides = {
    log: { level: mirrorLogLevel() },
    upstreams: {
      'docker.io': remote ? { url: remote.url } : { url: env.hubTap.url, username: HUB_USER, password: HUB_PASSWORD, tokenRealms: [`127.0.0.1:${env.upstreams.token.port}`], redirectHosts: cdnHosts(env) },
    },
  };
  let running: RunningMirror = await startMirror(dir, env.upstreams, overrides);
  return {
    name: 'mirror',
    get url() {
      return running.url;
    },
    get pid() {
      return running.process.pid;
    },
    async reset() {
      await running.stop();
      rmSync(running.cacheDir, { recursive: true, force: true });
      running = await startMirror(dir, env.upstreams, overrides);
    },
    stop: () => running.stop(),
  };
}

/** The deployment of deploy/nginx: nginx (2 workers, like the ceiling) in front of the mirror in accel mode. */
export async function startMirrorNginxTarget(dir: string, env: BenchUpstreams): Promise<Target> {
  const overrides = {
    log: { level: 'warn' },
    accel: { redirectPrefix: ACCEL_PREFIX },
    upstreams: {
      'docker.io': { url: env.hubTap.url, username: HUB_USER, password: HUB_PASSWORD, tokenRealms: [`127.0.0.1:${env.upstreams.token.port}`], redirectHosts: cdnHosts(env) },
    },
  };
  const start = async (): Promise<{ mirror: RunningMirror; front: NginxFront }> => {
    const mirror = await startMirror(join(dir, 'mirror'), env.upstreams, overrides);
    try {
      return { mirror, front: await startNginxFront(join(dir, 'nginx'), { mirrorUrl: mirror.url, cacheDir: mirror.cacheDir, workerProcesses: 2 }) };
    } catch (error) {
      await mirror.stop();
      throw error;
    }
  };
  const stop = async () => {
    await running.front.stop();
    await running.mirror.stop();
  };
  let running = await start();
  return {
    name: 'mirror+nginx',
    get url() {
      return running.front.url;
    },
    get pid() {
      return running.mirror.process.pid;
    },
    async reset() {
      await stop();
      rmSync(running.mirror.cacheDir, { recursive: true, force: true });
      running = await start();
    },
    stop,
  };
}

export async function startReferenceTarget(dir: string, env: BenchUpstreams, remote?: PlainRemote): Promise<Target> {
  const processes = new ProcessGroup();
  const dataDir = join(dir, 'data');
  const start = async (): Promise<{ process: StartedProcess; url: string }> => {
    mkdirSync(dataDir, { recursive: true });
    const port = await freeLoopbackPort();
    const configFile = join(dir, 'config.yml');
    writeFileSync(configFile, referenceConfig(dataDir, port, remote ?? { url: env.hubTap.url, username: HUB_USER, password: HUB_PASSWORD }));
    const started = processes.start('reference', 'docker-registry', ['serve', configFile], join(dir, 'registry.log'));
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/v2/`, started);
    return { process: started, url };
  };
  let running = await start();
  return {
    name: 'reference',
    get url() {
      return running.url;
    },
    get pid() {
      return running.process.pid;
    },
    async reset() {
      await stopByPid(running.process);
      rmSync(dataDir, { recursive: true, force: true });
      running = await start();
    },
    stop: () => processes.stopAll(),
  };
}

/** distribution's proxy mode as its documentation describes it; JSON is valid YAML. */
function referenceConfig(dataDir: string, port: number, remote: PlainRemote & { username?: string; password?: string }): string {
  return JSON.stringify({
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: dataDir }, delete: { enabled: true }, cache: { blobdescriptor: 'inmemory' }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `127.0.0.1:${port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } },
    proxy: { remoteurl: remote.url, ...(remote.username ? { username: remote.username, password: remote.password } : {}) },
  }, null, 2);
}

/** Serves the seeded blob files like the nginx ceiling, with as many processes as it has workers. */
export async function startNodeSendfileTarget(dir: string, seedDir: string, processCount = 2): Promise<Target> {
  const processes = new ProcessGroup();
  mkdirSync(dir, { recursive: true });
  const port = await freeLoopbackPort();
  const script = fileURLToPath(new URL('./node-sendfile-server.ts', import.meta.url));
  const started = processes.start('node-sendfile', process.execPath, ['--import', 'tsx', script, String(port), seedDir, String(processCount)], join(dir, 'node-sendfile.log'));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, started);
  return { name: 'node-sendfile', url, pid: started.pid, reset: async () => undefined, stop: () => processes.stopAll() };
}

/** nginx serves only blobs by digest and `/v2/`; that is all the throughput scenario asks of it. */
export async function startNginxTarget(dir: string, seedDir: string, workerProcesses = 2): Promise<Target> {
  const processes = new ProcessGroup();
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const port = await freeLoopbackPort();
  const configFile = join(dir, 'nginx.conf');
  writeFileSync(configFile, nginxConfig(dir, port, join(seedDir, 'blobs', 'sha256'), workerProcesses));
  const started = processes.start('nginx', 'nginx', ['-c', configFile, '-p', dir], join(dir, 'nginx.stdout.log'));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, started);
  return { name: 'nginx', url, pid: started.pid, reset: async () => undefined, stop: () => processes.stopAll() };
}

function nginxConfig(dir: string, port: number, blobDir: string, workerProcesses: number): string {
  const temp = (name: string) => `${name}_temp_path ${join(dir, 'tmp', name)};`;
  return `daemon off;
worker_processes ${workerProcesses};
${process.getuid?.() === 0 ? 'user root root;' : ''}
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx.error.log')} warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  server_tokens off;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  keepalive_requests 100000;
  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = /v2/ { default_type application/json; return 200 '{}'; }
    location ~ "^/v2/.+/blobs/sha256:([a-f0-9]{64})$" { default_type application/octet-stream; alias ${blobDir}/$1; }
    location / { return 404; }
  }
}
`;
}
