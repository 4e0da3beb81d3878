/**
 * The scheme and host a client reached this registry at, for the absolute URLs it is sent back
 * (upload `Location`s, distribution-spec "Push"; the events' `url`): by default the request's
 * own Host header and this server's scheme, which is right for direct clients and for fronts
 * that pass Host on (nginx `proxy_set_header Host $http_host`). A front that terminates TLS
 * or maps ports says what the client used in X-Forwarded-Proto and X-Forwarded-Host; those are
 * believed only with `listen.trustForwardedHeaders` and from a loopback peer (the front on the
 * same host or pod, http/client-address.ts), since anyone else could send them.
 */
import type { Context } from 'hono';
import { fromLoopbackPeer } from './client-address.js';

/** host, host:port, [v6]:port: nothing that could carry a path, credentials or a second header. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export function externalBase(c: Context, trustForwardedHeaders: boolean): string {
  const url = new URL(c.req.url);
  let scheme = url.protocol.slice(0, -1);
  let host = url.host;
  if (trustForwardedHeaders && fromLoopbackPeer(c)) {
    const proto = firstValue(c.req.header('x-forwarded-proto'))?.toLowerCase();
    const forwardedHost = firstValue(c.req.header('x-forwarded-host'));
    if (proto === 'http' || proto === 'https') scheme = proto;
    if (forwardedHost !== undefined && HOST.test(forwardedHost)) host = forwardedHost;
  }
  return `${scheme}://${host}`;
}

/** The client-side entry of a list a chain of proxies appended to. */
function firstValue(header: string | undefined): string | undefined {
  const value = header?.split(',')[0]?.trim();
  return value ? value : undefined;
}
