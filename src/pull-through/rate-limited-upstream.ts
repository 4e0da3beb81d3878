/**
 * Wraps an upstream so that no manifest GET reaches it while it is rate-limiting us (see
 * upstream/rate-limits.ts). The refusal is a TooManyRequestsError, which the manifest resolver
 * already answers by serving a known tag stale; an uncached tag gets 429 with Retry-After.
 * HEADs (revalidation) and blobs pass untouched.
 */
import type { UpstreamRateLimits } from '../upstream/rate-limits.js';
import type { UpstreamPort } from './upstream-port.js';

export function rateLimitedUpstream(upstream: UpstreamPort, limits: UpstreamRateLimits): UpstreamPort {
  const withoutCredentials = upstream.withoutCredentials && rateLimitedUpstream(upstream.withoutCredentials, limits);
  return {
    name: upstream.name,
    ...(withoutCredentials ? { withoutCredentials } : {}),
    async fetchManifest(repo, reference, options) {
      if (options.method === 'GET') {
        // Replicas: a 429 another replica got counts here too (UpstreamRateLimits.refresh).
        await limits.refresh(upstream.name);
        limits.assertManifestGetAllowed(upstream.name, `GET manifest ${repo}:${reference}`);
      }
      return upstream.fetchManifest(repo, reference, options);
    },
    fetchBlob: (repo, digest, options) => upstream.fetchBlob(repo, digest, options),
    prepareFetch: (repo) => upstream.prepareFetch?.(repo),
    headBlob: (repo, digest, options) => upstream.headBlob(repo, digest, options),
    fetchTags: (repo, query, options) => upstream.fetchTags(repo, query, options),
    fetchReferrers: (repo, digest, artifactType, options) => upstream.fetchReferrers(repo, digest, artifactType, options),
  };
}
