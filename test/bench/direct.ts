/**
 * The upstream itself as a peer: a client pulling straight from hub (token, manifest, blob GET
 * answered 307 to the CDN) without any mirror. A cold pull through a mirror is compared to this.
 * The token is fetched before the measurement, as a client that already logged in holds one.
 */
import { HUB_PASSWORD, HUB_SERVICE, HUB_USER } from '../interop/support/token-server.js';
import type { BenchUpstreams } from './bench-upstreams.js';
import { runLoad } from './load.js';
import type { PullResult } from './registry-client.js';
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

/**
 * Makes a server just restarted with an empty cache a *running* one before a cold measurement:
 * one pull of library/alpine:3.20 (another repository, so the measured image's token and access
 * check still count) loads its code, warms its JIT and opens its upstream connections. Without
 * it, a cold blob through a Node process measures the first request of a new process too (about
 * 60-90 ms more before the first byte here, and ~30% more CPU), which a mirror in service pays
 * once, not per miss.
 */
export async function primeServer(env: BenchUpstreams, target: Target, deadlineMs: number): Promise<void> {
  if (target.name === 'direct') return;
  await runLoad<PullResult>({ kind: 'pull', base: target.url, repo: env.small.repo, tag: env.small.tag, parallel: 3 }, deadlineMs);
}
