/**
 * The tag list Link header: parsed per RFC 8288, rebuilt for the mirror from `n` and `last`
 * only, keeping the client's route; fuzzed with fast-check.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mirrorTagsLink, nextPagePosition, parseLinkHeader } from '../../src/http/link-header.js';

const MIRROR = 'http://mirror.local:5000';

/** A link as an upstream would send it, its query built by URLSearchParams. */
function upstreamLink(base: string, n: string | undefined, last: string): string {
  const query = new URLSearchParams();
  if (n !== undefined) query.set('n', n);
  query.set('last', last);
  return `<${base}/v2/some/repo/tags/list?${query}>; rel="next"`;
}

const clientRoutes = fc.constantFrom(
  { path: '/v2/library/alpine/tags/list', ns: undefined },
  { path: '/v2/alpine/tags/list', ns: undefined },
  { path: '/v2/gcr.io/project/app/tags/list', ns: undefined },
  { path: '/v2/project/app/tags/list', ns: 'gcr.io' },
  { path: '/v2/localhost:5000/team/app/tags/list', ns: undefined },
);

describe('parseLinkHeader', () => {
  it('reads targets and parameters, quoted or not, several links per header', () => {
    expect(parseLinkHeader('</a?x=1>; rel="prev", <https://h/b;c?d=e,f>;rel=next; title="a, \\"b\\""')).toEqual([
      { target: '/a?x=1', params: { rel: 'prev' } },
      { target: 'https://h/b;c?d=e,f', params: { rel: 'next', title: 'a, "b"' } },
    ]);
  });

  it('never throws, whatever it is given', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => Array.isArray(parseLinkHeader(text))), { numRuns: 2000 });
  });
});

describe('mirrorTagsLink', () => {
  it('keeps n and last and the client route (path prefix and ns), for any values', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('https://gcr.io', 'http://127.0.0.1:5000', ''),
        fc.option(fc.integer({ min: 0, max: 999_999 }).map(String), { nil: undefined }),
        fc.string({ maxLength: 128, unit: 'grapheme' }),
        clientRoutes,
        (base, n, last, route) => {
          const request = `${MIRROR}${route.path}?n=5${route.ns === undefined ? '' : `&ns=${encodeURIComponent(route.ns)}`}`;
          const link = mirrorTagsLink(upstreamLink(base, n, last), request);
          const [parsed] = parseLinkHeader(link!);
          const target = new URL(parsed!.target, MIRROR);
          return (
            parsed!.params.rel === 'next' &&
            parsed!.target.startsWith('/v2/') &&
            target.pathname === route.path &&
            target.searchParams.get('n') === (n ?? null) &&
            target.searchParams.get('last') === last &&
            target.searchParams.get('ns') === (route.ns ?? null)
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('is a relative, printable-ASCII header value or nothing, whatever the upstream sent', () => {
    const headerish = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.tuple(fc.string(), fc.string({ unit: 'binary' })).map(([target, rel]) => `<${target}>; rel="${rel}"`),
      fc.string({ unit: 'binary' }).map((last) => `</v2/x/tags/list?n=1&last=${last}>; rel="next"`),
    );
    fc.assert(
      fc.property(headerish, fc.string(), (header, ns) => {
        const link = mirrorTagsLink(header, `${MIRROR}/v2/library/alpine/tags/list?ns=${encodeURIComponent(ns)}`);
        return link === undefined || /^<\/v2\/library\/alpine\/tags\/list\?[\x21-\x3d\x3f-\x7e]*>; rel="next"$/.test(link);
      }),
      { numRuns: 5000 },
    );
  });

  it('gives no link for a target that is not http(s), a missing last, or a last page', () => {
    for (const scheme of ['javascript:alert(1)//', 'data:text/html,', 'file:///etc/', 'ftp://h/', 'ws://h/']) {
      expect(mirrorTagsLink(`<${scheme}?n=1&last=b>; rel="next"`, `${MIRROR}/v2/a/tags/list`), scheme).toBeUndefined();
    }
    expect(mirrorTagsLink('</v2/a/tags/list?n=2>; rel="next"', `${MIRROR}/v2/a/tags/list`)).toBeUndefined();
    expect(mirrorTagsLink('</v2/a/tags/list?n=2&last=b>; rel="prev"', `${MIRROR}/v2/a/tags/list`)).toBeUndefined();
    expect(mirrorTagsLink(undefined, `${MIRROR}/v2/a/tags/list`)).toBeUndefined();
  });

  it('picks the next link among several and drops an n that is not a page size', () => {
    expect(nextPagePosition('</p?last=a>; rel="prev", </n?n=abc&last=b>; rel="Next last"')).toEqual({ n: undefined, last: 'b' });
  });
});
