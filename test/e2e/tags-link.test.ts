/**
 * tags/list pagination through the mirror keeps the client's route (issue 12 item 9): the next
 * page's Link names the same registry prefix or ?ns= the client used, so page 2 of a gcr.io list
 * comes from gcr.io; and only http(s) links from the upstream are followed up on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { answer, startHostile, type HostileServer } from '../helpers/hostile-upstream.js';
import { get } from '../helpers/http.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { type E2eSetup, startE2e } from './e2e-fixture.js';

let e2e: E2eSetup | undefined;
let mirror: MirrorUnderTest | undefined;
let hostile: HostileServer | undefined;
afterEach(async () => {
  await e2e?.close();
  await mirror?.close();
  await hostile?.close();
  e2e = mirror = hostile = undefined;
});

const tagsOf = (body: Buffer) => (JSON.parse(body.toString()) as { tags: string[] }).tags;
const targetOf = (link: unknown) => String(link).slice(1, String(link).indexOf('>'));

describe('tags/list Link through the mirror', () => {
  it('keeps the registry path prefix and ?ns=, so every page comes from the same registry', async () => {
    e2e = await startE2e({ upstreams: ['docker.io', 'gcr.io'] });
    for (const tag of ['a', 'b', 'c']) pushImage(e2e.fakes['gcr.io']!, 'project/app', tag, makeImage({ layers: [10], seed: `gcr-${tag}` }));
    pushImage(e2e.fake, 'project/app', 'hub-only', makeImage({ layers: [10], seed: 'hub' }));

    const prefixed = await get(e2e.url('/v2/gcr.io/project/app/tags/list?n=2'));
    expect(tagsOf(prefixed.body)).toEqual(['a', 'b']);
    expect(prefixed.headers.link).toBe('</v2/gcr.io/project/app/tags/list?n=2&last=b>; rel="next"');
    expect(tagsOf((await get(e2e.url(targetOf(prefixed.headers.link)))).body)).toEqual(['c']);

    const namespaced = await get(e2e.url('/v2/project/app/tags/list?n=2&ns=gcr.io'));
    expect(namespaced.headers.link).toBe('</v2/project/app/tags/list?n=2&last=b&ns=gcr.io>; rel="next"');
    expect(tagsOf((await get(e2e.url(targetOf(namespaced.headers.link)))).body)).toEqual(['c']);
  });

  it('passes no Link whose target is not http(s), and rebuilds an absolute one as a path on the mirror', async () => {
    let link = '<javascript:alert(document.domain)//?n=1&last=a>; rel="next"';
    hostile = await startHostile((_req, res) => answer(res, 200, { 'content-type': 'application/json', link }, '{"name":"library/alpine","tags":["a"]}'));
    mirror = await startMirror({ upstreams: { 'docker.io': { url: hostile.url } } });
    const refused = await get(`${mirror.url}/v2/library/alpine/tags/list?n=1`);
    expect(refused.status).toBe(200);
    expect(refused.headers.link).toBeUndefined();
    link = '<https://evil.example/v2/other/repo/tags/list?n=1&last=a>; rel="next"';
    const rebuilt = await get(`${mirror.url}/v2/library/alpine/tags/list?n=1`);
    expect(rebuilt.headers.link).toBe('</v2/library/alpine/tags/list?n=1&last=a>; rel="next"');
  });
});
