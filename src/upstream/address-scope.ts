/**
 * Whether an IP address is a public (globally routable unicast) one, from the IANA IPv4 and IPv6
 * Special-Purpose Address Registries (RFC 6890 and updates). Redirect targets that resolve to
 * anything else (loopback, private, link-local, CGNAT, unspecified, documentation, multicast,
 * reserved) are internal to someone's network and are not dialled (see dial-guard.ts).
 *
 * IPv6 addresses that carry an IPv4 address (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96,
 * 6to4 2002::/16) are judged by that IPv4 address: DNS64 networks reach public IPv4 CDNs through
 * NAT64, and ::ffff:127.0.0.1 is loopback.
 */
import { BlockList, isIP } from 'node:net';

const NON_PUBLIC_IPV4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network", unspecified (RFC 791)
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // shared address space, CGNAT (RFC 6598)
  ['127.0.0.0', 8], // loopback (RFC 1122)
  ['169.254.0.0', 16], // link-local, cloud metadata endpoints (RFC 3927)
  ['172.16.0.0', 12], // private (RFC 1918)
  ['192.0.0.0', 24], // IETF protocol assignments (RFC 6890)
  ['192.0.2.0', 24], // TEST-NET-1 (RFC 5737)
  ['192.88.99.0', 24], // 6to4 relay anycast, deprecated (RFC 7526)
  ['192.168.0.0', 16], // private (RFC 1918)
  ['198.18.0.0', 15], // benchmarking (RFC 2544)
  ['198.51.100.0', 24], // TEST-NET-2 (RFC 5737)
  ['203.0.113.0', 24], // TEST-NET-3 (RFC 5737)
  ['224.0.0.0', 4], // multicast (RFC 5771)
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast (RFC 1112, RFC 919)
];

/** Inside 2000::/3 (global unicast, RFC 4291), the blocks that are not public. */
const NON_PUBLIC_IPV6: Array<[string, number]> = [
  ['2001::', 23], // IETF protocol assignments: Teredo, benchmarking, ORCHID (RFC 2928, RFC 6890)
  ['2001:db8::', 32], // documentation (RFC 3849)
  ['3fff::', 20], // documentation (RFC 9637)
];

const nonPublicIpv4 = blockList(NON_PUBLIC_IPV4, 'ipv4');
const nonPublicIpv6 = blockList(NON_PUBLIC_IPV6, 'ipv6');
// Everything outside 2000::/3 is loopback, unspecified, ULA fc00::/7, link-local fe80::/10,
// multicast ff00::/8, discard-only 100::/64, or not assigned at all.
const globalUnicastIpv6 = blockList([['2000::', 3]], 'ipv6');

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !nonPublicIpv4.check(address, 'ipv4');
  if (family !== 6) return false;
  const groups = ipv6Groups(address);
  const embedded = embeddedIpv4(groups);
  if (embedded !== undefined) return isPublicAddress(embedded);
  const canonical = groups.map((group) => group.toString(16)).join(':');
  return globalUnicastIpv6.check(canonical, 'ipv6') && !nonPublicIpv6.check(canonical, 'ipv6');
}

/** The 8 16-bit groups of an IPv6 address (zone index dropped; `::` and dotted IPv4 tails expanded). */
export function ipv6Groups(address: string): number[] {
  // The WHATWG URL parser canonicalises: lower case, `::` compression, IPv4 tail turned into hex.
  const canonical = new URL(`http://[${address.split('%')[0]}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => parseInt(group, 16));
}

function embeddedIpv4(groups: number[]): string | undefined {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [number, number, number, number, number, number, number, number];
  const mapped = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff;
  const nat64 = g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0;
  if (mapped || nat64) return dottedQuad(g6, g7);
  if (g0 === 0x2002) return dottedQuad(g1, g2); // 6to4 (RFC 3056)
  return undefined;
}

function dottedQuad(high: number, low: number): string {
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

function blockList(ranges: Array<[string, number]>, family: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, family);
  return list;
}
