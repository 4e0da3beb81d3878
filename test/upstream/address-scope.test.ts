/**
 * Address classification for the dial guard, checked against an independent reference: the
 * IANA special-purpose IPv4 blocks as integer ranges, and structural properties for IPv6.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv6Groups, isPublicAddress } from '../../src/upstream/address-scope.js';

/** [first address, prefix length] of every IPv4 block that is not public (IANA registry). */
const NON_PUBLIC_V4: Array<[number, number]> = [
  [0x00000000, 8], [0x0a000000, 8], [0x64400000, 10], [0x7f000000, 8], [0xa9fe0000, 16], [0xac100000, 12],
  [0xc0000000, 24], [0xc0000200, 24], [0xc0586300, 24], [0xc0a80000, 16], [0xc6120000, 15], [0xc6336400, 24],
  [0xcb007100, 24], [0xe0000000, 4], [0xf0000000, 4],
];

const toNumber = (ip: string) => ip.split('.').reduce((value, part) => value * 256 + Number(part), 0);
const toDotted = (value: number) => [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
const inBlock = (value: number, [first, prefix]: [number, number]) => Math.floor(value / 2 ** (32 - prefix)) === Math.floor(first / 2 ** (32 - prefix));
const referencePublicV4 = (ip: string) => !NON_PUBLIC_V4.some((block) => inBlock(toNumber(ip), block));

/** An address inside one of the non-public IPv4 blocks. */
const nonPublicV4 = fc
  .tuple(fc.constantFrom(...NON_PUBLIC_V4), fc.nat())
  .map(([[first, prefix], offset]) => toDotted(first + (offset % 2 ** (32 - prefix))));

/** 128 random bits under a fixed prefix, written as 8 hex groups. */
function v6Under(prefixGroups: number[], prefixBits: number) {
  return fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((groups) => {
    const bits = groups.map((group, index) => {
      const keep = Math.max(0, Math.min(16, prefixBits - index * 16));
      const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      return ((prefixGroups[index] ?? 0) & mask) | (group & ~mask & 0xffff);
    });
    return bits.map((group) => group.toString(16)).join(':');
  });
}

describe('isPublicAddress', () => {
  it('agrees with the IANA reference for any IPv4 address', () => {
    fc.assert(fc.property(fc.ipV4(), (ip) => isPublicAddress(ip) === referencePublicV4(ip)), { numRuns: 5000 });
  });

  it('refuses every address of every non-public IPv4 block', () => {
    fc.assert(fc.property(nonPublicV4, (ip) => !isPublicAddress(ip)), { numRuns: 3000 });
  });

  it('judges IPv4-mapped, NAT64 and 6to4 IPv6 addresses by the IPv4 address they carry', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), nonPublicV4), (ip) => {
        const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number];
        const hex = (high: number, low: number) => ((high << 8) | low).toString(16);
        const expected = isPublicAddress(ip);
        return (
          isPublicAddress(`::ffff:${ip}`) === expected &&
          isPublicAddress(`64:ff9b::${hex(a, b)}:${hex(c, d)}`) === expected &&
          isPublicAddress(`2002:${hex(a, b)}:${hex(c, d)}::1`) === expected
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses IPv6 loopback, unspecified, unique-local, link-local, multicast, documentation and everything outside 2000::/3', () => {
    for (const ip of ['::', '::1', '0:0:0:0:0:0:0:1', '::127.0.0.1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'ff02::1', '2001:db8::1', '100::1', '4000::1']) {
      expect(isPublicAddress(ip), ip).toBe(false);
    }
    const blocks: Array<[number[], number]> = [[[0xfc00], 7], [[0xfe80], 10], [[0xff00], 8], [[0x2001, 0x0db8], 32], [[0, 0, 0, 0, 0, 0], 96], [[0x4000], 2], [[0x8000], 1]];
    for (const [prefix, bits] of blocks) fc.assert(fc.property(v6Under(prefix, bits), (ip) => !isPublicAddress(ip)), { numRuns: 300 });
  });

  it('accepts public IPv6 unicast, whatever its spelling', () => {
    for (const ip of ['2606:4700::6810:84e5', '2a00:1450:4001:82b::200e', '2600:1f18::1']) expect(isPublicAddress(ip), ip).toBe(true);
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const expanded = ipv6Groups(ip).map((group) => group.toString(16).padStart(4, '0').toUpperCase()).join(':');
        return isPublicAddress(ip) === isPublicAddress(expanded);
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws, and refuses what is not an IP address', () => {
    fc.assert(fc.property(fc.string(), (text) => typeof isPublicAddress(text) === 'boolean'));
    for (const text of ['', 'localhost', '1.2.3', '1.2.3.4.5', '01.2.3.4', '::g', 'example.com']) expect(isPublicAddress(text), text).toBe(false);
  });
});
