/**
 * The client address that failure limits are kept under (auth-failure-limiter.ts).
 *
 * - The peer of the TCP connection, except when the peer is a loopback address and the request
 *   carries X-Forwarded-For: then the mirror sits behind a front on the same host or pod
 *   (deploy/nginx, deploy/kubernetes-nginx), which appends the address it saw as the last entry
 *   (`$proxy_add_x_forwarded_for`). Without this, every client behind nginx would share one
 *   allowance and one attacker would lock all of them out. Earlier entries are the client's own
 *   claims and are ignored; a remote peer's X-Forwarded-For is ignored entirely.
 * - IPv6 addresses count per /64, the block one subscriber usually gets (RFC 6177): rotating
 *   through one's own /64 must not give a fresh allowance per address.
 */
import type { Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export function clientAddress(c: Context): string {
  const peer = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket?.remoteAddress;
  if (peer === undefined) return 'unknown';
  const forwarded = isLoopback(peer) ? lastForwardedFor(c.req.header('x-forwarded-for')) : undefined;
  return addressKey(forwarded ?? peer);
}

/** The peer is on this host or pod (a front such as deploy/nginx): only then are X-Forwarded-* headers believed at all. */
export function fromLoopbackPeer(c: Context): boolean {
  const peer = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket?.remoteAddress;
  return peer !== undefined && isLoopback(peer);
}

function lastForwardedFor(header: string | undefined): string | undefined {
  const last = header?.split(',').at(-1)?.trim();
  return last !== undefined && isIP(last) !== 0 ? last : undefined;
}

function isLoopback(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./i.test(address);
}

/** IPv4 as is (also when mapped into IPv6); IPv6 as its /64 prefix. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  return `${expandIpv6(address.replace(/%.*$/, '')).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, `::` expanded and leading zeros dropped. */
function expandIpv6(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const groups = (text: string) => (text === '' ? [] : text.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros = Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0');
  return [...left, ...zeros, ...right].map((group) => (/^[0-9a-f]+$/i.test(group) ? parseInt(group, 16).toString(16) : group));
}
