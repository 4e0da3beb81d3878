/**
 * Wraps an upstream so that the time of every call made through it is charged to one client
 * request: the access log reports the sum as the request's `upstreamMs`
 * (http/middleware/access-log.ts). A call is timed from its start until it resolves: the answer's
 * head for a blob, the whole body for a manifest, a tag list or referrers, a token round trip and
 * redirects included. The services wrap the port only where a request may reach the
 * upstream, so a cache hit allocates nothing for it.
 *
 * The account is handed down with the call rather than found through AsyncLocalStorage: on Node
 * 20 that puts a hook on every promise of the process once it is used, which cost a warm 3 MiB
 * blob response about a quarter of its JavaScript time (docs/benchmarks.md, "the request scope
 * without AsyncLocalStorage").
 */
import type { UpstreamPort } from './upstream-port.js';

/** What a request's upstream time is added to. */
export interface UpstreamTimeAccount {
  upstreamMs: number;
}

export function chargedUpstream(upstream: UpstreamPort, account: UpstreamTimeAccount): UpstreamPort {
  const timed = async <T>(call: Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await call;
    } finally {
      account.upstreamMs += performance.now() - started;
    }
  };
  const withoutCredentials = upstream.withoutCredentials && chargedUpstream(upstream.withoutCredentials, account);
  return {
    name: upstream.name,
    ...(withoutCredentials ? { withoutCredentials } : {}),
    fetchManifest: (repo, reference, options) => timed(upstream.fetchManifest(repo, reference, options)),
    fetchBlob: (repo, digest, options) => timed(upstream.fetchBlob(repo, digest, options)),
    prepareFetch: (repo) => upstream.prepareFetch?.(repo),
    headBlob: (repo, digest, options) => timed(upstream.headBlob(repo, digest, options)),
    fetchTags: (repo, query, options) => timed(upstream.fetchTags(repo, query, options)),
    fetchReferrers: (repo, digest, artifactType, options) => timed(upstream.fetchReferrers(repo, digest, artifactType, options)),
  };
}
