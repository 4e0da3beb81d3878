import { describe, expect, it } from 'vitest';
import { formatImage, parseImageList, parseImageReference, resolveImage } from '../../src/airgap/image-reference.js';
import { parsePlatformFilter, platformMatches } from '../../src/airgap/image-walk.js';
import { UpstreamRouter } from '../../src/upstream/upstream-router.js';

const router = new UpstreamRouter(['docker.io', 'gcr.io', 'localhost:5000'], 'docker.io');
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const full = (text: string) => formatImage(resolveImage(parseImageReference(text), router));

describe('image references (docker normalisation, routed like the HTTP API)', () => {
  it.each([
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['library/alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['docker.io/library/alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['docker.io/alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['index.docker.io/library/alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['myorg/app:v1', 'docker.io/myorg/app:v1'],
    ['gcr.io/distroless/static:nonroot', 'gcr.io/distroless/static:nonroot'],
    ['localhost:5000/team/tool', 'localhost:5000/team/tool:latest'],
    [`alpine@${DIGEST}`, `docker.io/library/alpine@${DIGEST}`],
    [`alpine:3.20@${DIGEST}`, `docker.io/library/alpine:3.20@${DIGEST}`],
  ])('%s -> %s', (text, expected) => {
    expect(full(text)).toBe(expected);
  });

  it('a digest wins over a tag beside it', () => {
    const image = resolveImage(parseImageReference(`alpine:3.20@${DIGEST}`), router);
    expect(image).toMatchObject({ upstream: 'docker.io', repository: 'library/alpine', tag: '3.20' });
    expect(image.digest?.value).toBe(DIGEST);
  });

  it.each([['Alpine:3.20'], ['alpine:'], ['alpine@sha256:abc'], ['quay.io/x/y:1'], [':tag']])('rejects %s', (text) => {
    expect(() => full(text)).toThrow();
  });

  it('reads image lists with comments and blank lines', () => {
    expect(parseImageList('# base images\nalpine:3.20\n\n  gcr.io/distroless/static:nonroot  # runtime\r\n')).toEqual(['alpine:3.20', 'gcr.io/distroless/static:nonroot']);
  });

  it('matches platforms, arm64 meaning v8 when no variant is given', () => {
    const filter = parsePlatformFilter('linux/amd64,linux/arm64/v8');
    expect(platformMatches(filter, { os: 'linux', architecture: 'amd64' })).toBe(true);
    expect(platformMatches(filter, { os: 'linux', architecture: 'arm64' })).toBe(true);
    expect(platformMatches(filter, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches(filter, undefined)).toBe(false);
    expect(platformMatches(undefined, { os: 'unknown', architecture: 'unknown' })).toBe(true);
    expect(() => parsePlatformFilter('linux')).toThrow(/os\/arch/);
  });
});
