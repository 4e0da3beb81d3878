/**
 * Which token realms may receive our requests (and the upstream's credentials). A registry's
 * 401 names the realm, so trusting any realm would let a registry, or anyone able to alter its
 * answers, collect the configured password. Trusted: the upstream's own host:port and the
 * `tokenRealms` entries, where `host` means the realm scheme's default port and `host:port` is
 * exact.
 */
import { UnauthorizedError, UntrustedRealmError, UpstreamBadResponseError } from '../domain/errors.js';
import { hostWithPort, matchesHostEntry } from './host-entries.js';

export function trustedRealm(realm: string, upstreamUrl: URL, tokenRealms: readonly string[], upstreamName: string): URL {
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new UpstreamBadResponseError(`upstream ${upstreamName} named a token realm that is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UnauthorizedError(`upstream ${upstreamName} named a token realm with unsupported scheme ${url.protocol}`);
  }
  const trusted = hostWithPort(url) === hostWithPort(upstreamUrl) || tokenRealms.some((entry) => matchesHostEntry(url, entry));
  if (!trusted) {
    throw new UntrustedRealmError(
      `upstream ${upstreamName} named token realm host ${url.host}, which is not trusted; add it to upstreams["${upstreamName}"].tokenRealms to allow it`,
    );
  }
  return url;
}
