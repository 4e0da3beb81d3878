/**
 * What a scenario cost the upstream: requests by kind (from the hub counting proxy, the CDN and
 * the token server) and bytes (from the taps), between a `mark()` and a `since()`.
 * `settle()` waits until the upstream goes quiet, because a mirror may keep fetching after its
 * client is done (distribution in proxy mode finishes a second download in the background).
 */
import type { LoggedRequest } from '../interop/support/request-log.js';
import type { BenchUpstreams } from './bench-upstreams.js';

export interface UpstreamMark {
  readonly hub: number;
  readonly cdn: number;
  readonly token: number;
  readonly hubBytes: number;
  readonly cdnBytes: number;
}

export interface UpstreamUsage {
  requests: number;
  /** Response bytes (headers included) that reached the mirror from hub and the CDN. */
  bytes: number;
  /** "hub manifest GET", "cdn blob GET", "token token GET", with " <status>" when >= 400. */
  by: Record<string, number>;
}

export class UpstreamMeter {
  constructor(readonly env: BenchUpstreams) {}

  mark(): UpstreamMark {
    const { upstreams, hubTap, cdnTap } = this.env;
    return { hub: upstreams.hub.proxy.requests.mark(), cdn: upstreams.cdn.requests.mark(), token: upstreams.token.requests.mark(), hubBytes: hubTap.bytesDown, cdnBytes: cdnTap.bytesDown };
  }

  /** Requests since `mark`, each tagged with the server that saw it. */
  requestsSince(mark: UpstreamMark): Array<LoggedRequest & { server: string }> {
    const { upstreams } = this.env;
    const tag = (server: string) => (entry: LoggedRequest) => ({ ...entry, server });
    return [
      ...upstreams.hub.proxy.requests.since(mark.hub).map(tag('hub')),
      ...upstreams.cdn.requests.since(mark.cdn).map(tag('cdn')),
      ...upstreams.token.requests.since(mark.token).map(tag('token')),
    ];
  }

  since(mark: UpstreamMark): UpstreamUsage {
    const requests = this.requestsSince(mark);
    const by: Record<string, number> = {};
    for (const entry of requests) {
      const key = `${entry.server} ${kindOf(entry)} ${entry.method}${entry.status >= 400 ? ` ${entry.status}` : ''}`;
      by[key] = (by[key] ?? 0) + 1;
    }
    const bytes = this.env.hubTap.bytesDown - mark.hubBytes + (this.env.cdnTap.bytesDown - mark.cdnBytes);
    return { requests: requests.length, bytes, by: Object.fromEntries(Object.entries(by).sort()) };
  }

  /** GETs of one blob (by digest hex) since `mark`; 401s (token challenges) are counted apart. */
  blobGets(mark: UpstreamMark, digest: string): { hub: number; cdn: number; hubHeads: number; hubChallenges: number } {
    const hex = digest.replace(/^sha256:/, '');
    const forBlob = this.requestsSince(mark).filter((entry) => entry.path.includes(hex));
    const count = (server: string, method: string) => forBlob.filter((entry) => entry.server === server && entry.method === method && entry.status !== 401).length;
    const hubChallenges = forBlob.filter((entry) => entry.server === 'hub' && entry.status === 401).length;
    return { hub: count('hub', 'GET'), cdn: count('cdn', 'GET'), hubHeads: count('hub', 'HEAD'), hubChallenges };
  }

  /** Resolves once nothing reached the upstream for `quietMs`, or after `maxMs`. */
  async settle(quietMs = 1_000, maxMs = 60_000): Promise<void> {
    const started = Date.now();
    let last = JSON.stringify(this.mark());
    let quietSince = Date.now();
    while (Date.now() - started < maxMs) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const now = JSON.stringify(this.mark());
      if (now !== last) {
        last = now;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= quietMs) return;
    }
  }
}

function kindOf(entry: LoggedRequest & { server: string }): string {
  if (entry.server === 'token') return 'token';
  if (entry.server === 'cdn') return 'blob';
  if (entry.path === '/v2/' || entry.path === '/v2') return 'ping';
  if (entry.path.includes('/manifests/')) return 'manifest';
  if (entry.path.includes('/blobs/uploads')) return 'upload';
  if (entry.path.includes('/blobs/')) return 'blob';
  return 'other';
}

/** Usage measured over several marks (interleaved rounds), added up. */
export function sumUpstreamUsage(usages: UpstreamUsage[]): UpstreamUsage {
  const by: Record<string, number> = {};
  for (const usage of usages) for (const [key, value] of Object.entries(usage.by)) by[key] = (by[key] ?? 0) + value;
  return { requests: usages.reduce((sum, usage) => sum + usage.requests, 0), bytes: usages.reduce((sum, usage) => sum + usage.bytes, 0), by };
}
