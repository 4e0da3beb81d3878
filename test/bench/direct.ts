/**
 * The upstream itself as a peer: a client pulling straight from hub (token, manifest, blob GET
 * answered 307 to the CDN) without any mirror. A cold pull through a mirror is compared to this.
 * The token is fetched before the measurement, as a client that already logged in holds one.
 */
import { HUB_PASSWORD, HUB_SERVICE, HUB_USER } from '../interop/support/token-server.js';
import type { BenchUpstreams } from './bench-upstreams.js';
import type { Target } from './targets.js';

export function directTarget(env: BenchUpstreams): Target {
  return { name: 'direct', url: env.hubTap.url, pid: 0, reset: async () => undefined, stop: async () => undefined };
}

/** Authorization for pulling `repo` from hub, as `docker login` would hold it. */
export async function directHeaders(env: BenchUpstreams, repo: string): Promise<Record<string, string>> {
  const url = new URL(env.upstreams.token.url);
  url.searchParams.set('service', HUB_SERVICE);
  url.searchParams.set('scope', `repository:${repo}:pull`);
  const basic = Buffer.from(`${HUB_USER}:${HUB_PASSWORD}`).toString('base64');
  const response = await fetch(url, { headers: { authorization: `Basic ${basic}` }, signal: AbortSignal.timeout(30_000) });
  const body = (await response.json()) as { token?: string };
  if (response.status !== 200 || !body.token) throw new Error(`pull token for ${repo}: ${response.status}`);
  return { authorization: `Bearer ${body.token}` };
}
