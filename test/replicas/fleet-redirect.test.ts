/**
 * Issue 15 item 6 and done-when 5: with `storage.s3.redirect: true`, a warm blob GET answers 307
 * to a presigned S3 URL with a short expiry, carrying none of the client's credentials; that URL
 * gives the right bytes with no credentials of the client's own; a tampered signature is refused
 * by S3; HEAD is still answered by the mirror; a cold blob is still streamed by the mirror while
 * it downloads. A real replica process on a real S3 (Ceph RGW).
 */
import { describe, expect, it } from 'vitest';
import { get, head, sha256 } from '../helpers/http.js';
import { redisServerInstalled } from '../helpers/redis-server.js';
import { useS3 } from '../helpers/s3-suite.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { useFleets } from './replica-fleet.js';

const s3 = useS3();
const REPO = 'library/redirect';
const CLIENT_TOKEN = 'client-credential-do-not-forward';

describe.skipIf(!s3.available || !redisServerInstalled())('redirect mode', () => {
  const fleets = useFleets(s3);

  it('a warm GET is a 307 to a presigned URL that gives the right bytes; a tampered signature is refused; HEAD stays with the mirror', { timeout: 120_000 }, async () => {
    const { fake, fleet } = await fleets.open({ redirect: true });
    const image = makeImage({ layers: [800 * 1024], seed: 'fleet-redirect' });
    pushImage(fake, REPO, 'v1', image);
    const layer = image.layers[0]!;
    const [replica] = await fleet.start(1);
    const url = `${replica!.url}/v2/${REPO}/blobs/${layer.digest}`;
    const credentials = { authorization: `Bearer ${CLIENT_TOKEN}` };

    const cold = await get(url, credentials);
    expect(cold.status).toBe(200);
    expect(sha256(cold.body)).toBe(layer.digest);

    const warm = await get(url, credentials);
    expect(warm.status).toBe(307);
    expect(warm.body.length).toBe(0);
    const location = new URL(String(warm.headers.location));
    expect(location.origin).toBe(new URL(s3.target().endpoint).origin);
    expect(location.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(Number(location.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
    expect(String(warm.headers.location)).not.toContain(CLIENT_TOKEN);
    expect(JSON.stringify(warm.headers)).not.toContain(CLIENT_TOKEN);

    const fetched = await get(location.toString());
    expect(fetched.status).toBe(200);
    expect(sha256(fetched.body)).toBe(layer.digest);

    const signature = location.searchParams.get('X-Amz-Signature')!;
    const tampered = new URL(location);
    tampered.searchParams.set('X-Amz-Signature', `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`);
    const refused = await get(tampered.toString());
    expect(refused.status).toBe(403);
    expect(refused.body.toString()).toContain('SignatureDoesNotMatch');

    const answered = await head(url);
    expect(answered.status).toBe(200);
    expect(answered.headers['content-length']).toBe(String(layer.size));
    expect(answered.headers.location).toBeUndefined();
  });
});
