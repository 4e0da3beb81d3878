/**
 * Where an upstream may make us connect. A registry answers with redirects (blobs to a CDN) and
 * names token realms, so a hostile or compromised upstream could point the mirror at anything on
 * its own network: a cloud metadata endpoint, an admin port on loopback (SSRF). So every
 * connection is checked when it is made, on the address it is made to:
 *
 *   - the upstream's own origin, its `tokenRealms` and its `redirectHosts` are dialled whatever
 *     they resolve to (the operator named them; the upstream URL may well be internal);
 *   - anything else only when every address it is dialled on is public (address-scope.ts).
 *
 * The check lives in undici's connector, after DNS resolution and on the very addresses the
 * socket connects to, so a name that resolves to a public address when checked and to a private
 * one when dialled (DNS rebinding) has no gap to slip through.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { buildConnector } from 'undici';
import { hostWithPort, matchesHostEntry } from './host-entries.js';
import { isPublicAddress } from './address-scope.js';

export interface DialPolicy {
  upstreamName: string;
  /** Dialled whatever it resolves to. */
  isTrusted(destination: URL): boolean;
}

/** A connection the policy refused; the message names the host and the config key that allows it. */
export class DialRefusedError extends Error {
  override name = 'DialRefusedError';
  readonly code = 'ERR_DIAL_REFUSED';
}

export function dialPolicyFor(upstreamName: string, upstreamUrl: URL, trustedEntries: readonly string[]): DialPolicy {
  const own = hostWithPort(upstreamUrl);
  return {
    upstreamName,
    isTrusted: (destination) => hostWithPort(destination) === own || trustedEntries.some((entry) => matchesHostEntry(destination, entry)),
  };
}

/** `socketOptions` go to every net.connect / tls.connect (blob-socket-client.ts: how sockets read). */
export function guardedConnector(policy: DialPolicy, timeoutMs: number, socketOptions: object = {}): buildConnector.connector {
  const trusted = buildConnector({ ...socketOptions, timeout: timeoutMs });
  const checked = buildConnector({ ...socketOptions, timeout: timeoutMs, lookup: publicOnlyLookup });
  return function connectGuarded(options, callback) {
    const destination = destinationOf(options);
    if (policy.isTrusted(destination)) return trusted(options, callback);
    const refuse = () => new DialRefusedError(refusalMessage(policy.upstreamName, destination.host));
    // An IP literal is not looked up: judge it here.
    if (isIP(options.hostname)) {
      if (isPublicAddress(options.hostname)) return trusted(options, callback);
      return callback(refuse(), null);
    }
    checked(options, (...args) => {
      // The lookup knows the host name only; the message names the port too, as an entry must.
      if (args[0] instanceof DialRefusedError) return callback(refuse(), null);
      callback(...args);
    });
  };
}

function refusalMessage(upstreamName: string, host: string): string {
  return (
    `refusing to connect to ${host}: it is not a public address (loopback, private, link-local or reserved); ` +
    `if upstream ${upstreamName} may send us there, add "${host}" to upstreams["${upstreamName}"].redirectHosts`
  );
}

function destinationOf(options: buildConnector.Options): URL {
  const host = isIPv6(options.hostname) ? `[${options.hostname}]` : options.hostname;
  return new URL(`${options.protocol}//${host}${options.port ? `:${options.port}` : ''}/`);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that hands the socket only public addresses. Node asks for all
 * addresses when it races IPv4 and IPv6 (autoSelectFamily), for one otherwise.
 */
function publicOnlyLookup(hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void {
  const all: LookupAllOptions = { ...(options as object), all: true };
  dnsLookup(hostname, all, (error, addresses) => {
    if (error) return callback(error, []);
    const usable = addresses.filter((entry) => isPublicAddress(entry.address));
    if (usable.length === 0) return callback(new DialRefusedError(`${hostname} has no public address`), []);
    if (options.all) return callback(null, usable);
    callback(null, usable[0]!.address, usable[0]!.family);
  });
}
