/**
 * nginx in front of a running mirror, configured by deploy/nginx/registry-mirror.conf itself:
 * only the lines marked `deploy:` are rewritten (listen address, the mirror's address, the
 * blobs directory), so tests and the benchmark exercise the file operators install.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessGroup, freeLoopbackPort, waitForHttp } from './processes.js';
import { REPO_ROOT } from './mirror.js';

export const DEPLOY_NGINX_CONF = join(REPO_ROOT, 'deploy', 'nginx', 'registry-mirror.conf');
/** The internal location of the deploy file; the mirror's accel.redirectPrefix must equal it. */
export const ACCEL_PREFIX = '/_registry_mirror_blobs/';

export interface NginxFront {
  readonly url: string;
  /** With `accessLog`: one line per request, `METHOD uri status bytes accel=<X-Accel-Redirect>`. */
  readonly accessLogFile: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface NginxFrontOptions {
  /** Base URL of the mirror, e.g. http://127.0.0.1:40123 */
  mirrorUrl: string;
  /** The mirror's cache.dir. */
  cacheDir: string;
  workerProcesses?: number;
  accessLog?: boolean;
}

/** The deploy file with its `deploy:` lines pointed at this machine's mirror, port and cache. */
export function renderDeployConf(listenPort: number, mirrorHostPort: string, blobsDir: string): string {
  let text = readFileSync(DEPLOY_NGINX_CONF, 'utf8');
  const replace = (pattern: RegExp, line: string) => {
    if (!pattern.test(text)) throw new Error(`${DEPLOY_NGINX_CONF}: no line matching ${pattern}`);
    text = text.replace(pattern, line);
  };
  replace(/^(\s*)server \S+; # deploy:.*$/m, `$1server ${mirrorHostPort};`);
  replace(/^(\s*)listen \S+; # deploy:.*$/m, `$1listen 127.0.0.1:${listenPort} backlog=4096;`);
  replace(/^(\s*)alias \S+; # deploy:.*$/m, `$1alias ${blobsDir.replace(/\/?$/, '/')};`);
  return text;
}

export async function startNginxFront(dir: string, options: NginxFrontOptions): Promise<NginxFront> {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const port = await freeLoopbackPort();
  const site = join(dir, 'registry-mirror.conf');
  writeFileSync(site, renderDeployConf(port, new URL(options.mirrorUrl).host, join(options.cacheDir, 'blobs')));
  const main = join(dir, 'nginx.conf');
  writeFileSync(main, mainConf(dir, site, options));
  const processes = new ProcessGroup();
  const started = processes.start('nginx', 'nginx', ['-c', main, '-p', dir], join(dir, 'nginx.stdout.log'));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/v2/`, started);
  } catch (error) {
    await processes.stopAll();
    throw error;
  }
  return { url, pid: started.pid, accessLogFile: join(dir, 'access.log'), stop: () => processes.stopAll() };
}

function mainConf(dir: string, site: string, options: NginxFrontOptions): string {
  const temp = (name: string) => `${name}_temp_path ${join(dir, 'tmp', name)};`;
  return `daemon off;
worker_processes ${options.workerProcesses ?? 1};
${process.getuid?.() === 0 ? 'user root root;' : ''}
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx.error.log')} warn;
events { worker_connections 4096; multi_accept on; }
http {
  # What the tests read: which answers nginx served from a file after an X-Accel-Redirect.
  log_format accel '$request_method $request_uri $status $body_bytes_sent accel=$upstream_http_x_accel_redirect';
  ${options.accessLog ? `access_log ${join(dir, 'access.log')} accel;` : 'access_log off;'}
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  keepalive_requests 100000;
  include ${site};
}
`;
}
