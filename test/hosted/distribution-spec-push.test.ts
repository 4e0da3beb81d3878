/**
 * OCI distribution-spec v1.1 "Push", one test per line of test/hosted/distribution-spec-checklist.md
 * (its ID in the test name), against the mirror's hosted repositories on a real socket. Every
 * test ends by checking nothing reached the upstream that a push could have written to.
 */
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../helpers/http.js';
import { makeImage, makeIndex, seededBytes } from '../helpers/test-images.js';
import {
  call, errorCodes, header, openUpload, pushBlob, pushImageTo, putManifest, startHosted, upstreamWrites, withDigest, type HostedSetup,
} from './hosted-fixture.js';

let env: HostedSetup;
let base: string;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCTETS = { 'content-type': 'application/octet-stream' };
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

beforeAll(async () => {
  env = await startHosted();
  base = env.mirror.url;
});
afterAll(async () => {
  await env?.close();
});
afterEach(() => {
  expect(upstreamWrites(env.upstream), 'writes that reached the upstream').toBe(0);
});

async function uploadedRange(location: string): Promise<string | undefined> {
  return header(await call(location), 'range');
}

describe('General', () => {
  it('[P-01] accepts a manifest whose subject is absent from the repository', async () => {
    const subject = makeImage({ layers: [10], seed: 'p01-subject' }).manifest;
    const artifact = makeImage({ layers: [30], seed: 'p01', subject, artifactType: 'application/vnd.example.sig' });
    const response = await pushImageTo(base, 'team/p01', 'sig', artifact);
    expect(response.status).toBe(201);
    expect((await call(`${base}/v2/team/p01/manifests/${subject.digest}`)).status).toBe(404);
  });

  it('[P-02] refuses a manifest whose config or layers the repository does not have', async () => {
    const image = makeImage({ layers: [40, 41], seed: 'p02' });
    await pushBlob(base, 'team/p02', image.config.bytes);
    const response = await putManifest(base, 'team/p02', 'v1', image.manifest);
    expect(response.status).toBe(400);
    expect((await call(`${base}/v2/team/p02/manifests/v1`)).status).toBe(404);
  });

  it('[P-03] the refusal carries one MANIFEST_BLOB_UNKNOWN per missing digest, naming it', async () => {
    const image = makeImage({ layers: [40, 41], seed: 'p03' });
    await pushBlob(base, 'team/p03', image.config.bytes);
    // Present in another repository only: still missing from this one.
    await pushBlob(base, 'team/elsewhere', image.layers[1]!.bytes);
    const response = await putManifest(base, 'team/p03', 'v1', image.manifest);
    const errors = (JSON.parse(response.body.toString()) as { errors: Array<{ code: string; detail: { digest: string } }> }).errors;
    expect(errors.map((error) => error.code)).toEqual(['MANIFEST_BLOB_UNKNOWN', 'MANIFEST_BLOB_UNKNOWN']);
    expect(errors.map((error) => error.detail.digest)).toEqual(image.layers.map((layer) => layer.digest));
  });
});

describe('Pushing a blob monolithically: POST then PUT', () => {
  it('[P-10] POST /v2/<name>/blobs/uploads/ answers 202 Accepted', async () => {
    expect((await call(`${base}/v2/team/p10/blobs/uploads/`, { method: 'POST' })).status).toBe(202);
  });

  it('[P-11] the 202 carries a Location', async () => {
    const response = await call(`${base}/v2/team/p11/blobs/uploads/`, { method: 'POST' });
    expect(header(response, 'location')).toMatch(/\/v2\/team\/p11\/blobs\/uploads\//);
  });

  it('[P-12] the Location holds a UUID unique to the session', async () => {
    const [first, second] = [await openUpload(base, 'team/p12'), await openUpload(base, 'team/p12')];
    expect(first).toMatch(UUID);
    expect(UUID.exec(first)![0]).not.toBe(UUID.exec(second)![0]);
  });

  it('[P-13] the Location is absolute, built from the Host the client used; X-Forwarded-* count only when trusted', async () => {
    const location = await openUpload(base, 'team/p13', { host: 'registry.example:8443', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' });
    expect(location).toMatch(/^http:\/\/registry\.example:8443\/v2\/team\/p13\/blobs\/uploads\//);
    const trusting = await startHosted({ config: { hosted: { trustForwardedHeaders: true } } });
    try {
      const behindProxy = await openUpload(trusting.mirror.url, 'team/p13', { host: '127.0.0.1:5000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'registry.example' });
      expect(behindProxy).toMatch(/^https:\/\/registry\.example\/v2\/team\/p13\/blobs\/uploads\//);
    } finally {
      await trusting.close();
    }
  });

  it('[P-14] the Location is used as returned: query parameters a client keeps (registry:2 _state) do not matter', async () => {
    const bytes = Buffer.from('p14 blob');
    const location = new URL(await openUpload(base, 'team/p14'));
    location.searchParams.set('_state', 'kept-by-the-client');
    const response = await call(withDigest(location.toString(), sha256(bytes)), { method: 'PUT', headers: OCTETS, body: bytes });
    expect(response.status).toBe(201);
  });

  it('[P-15] PUT <location>?digest= with the blob answers 201 Created', async () => {
    const bytes = seededBytes(100_000, 'p15');
    const location = await openUpload(base, 'team/p15');
    const response = await call(withDigest(location, sha256(bytes)), { method: 'PUT', headers: { ...OCTETS, 'content-length': String(bytes.length) }, body: bytes });
    expect(response.status).toBe(201);
  });

  it('[P-16] the 201 Location is a pullable blob URL', async () => {
    const bytes = seededBytes(5000, 'p16');
    const location = await openUpload(base, 'team/p16');
    const response = await call(withDigest(location, sha256(bytes)), { method: 'PUT', headers: OCTETS, body: bytes });
    const pulled = await call(new URL(header(response, 'location')!, base).toString());
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(bytes)).toBe(true);
    expect(header(pulled, 'docker-content-digest')).toBe(sha256(bytes));
  });

  it('[P-17] bytes that do not hash to the digest: 400 DIGEST_INVALID, nothing stored', async () => {
    const bytes = Buffer.from('p17 the real bytes');
    const claimed = sha256(Buffer.from('p17 other bytes'));
    const location = await openUpload(base, 'team/p17');
    const response = await call(withDigest(location, claimed), { method: 'PUT', headers: OCTETS, body: bytes });
    expect(response.status).toBe(400);
    expect(errorCodes(response)).toEqual(['DIGEST_INVALID']);
    expect((await call(`${base}/v2/team/p17/blobs/${claimed}`, { method: 'HEAD' })).status).toBe(404);
    expect((await call(`${base}/v2/team/p17/blobs/${sha256(bytes)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('[P-18] PUT, PATCH and GET of an unknown or finished upload: 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const bytes = Buffer.from('p18');
    const location = await openUpload(base, 'team/p18');
    expect((await call(withDigest(location, sha256(bytes)), { method: 'PUT', headers: OCTETS, body: bytes })).status).toBe(201);
    const unknown = `${base}/v2/team/p18/blobs/uploads/00000000-0000-4000-8000-000000000000`;
    for (const url of [location, unknown, `${base}/v2/team/p18/blobs/uploads/not-a-uuid`]) {
      for (const [method, body] of [['PUT', bytes], ['PATCH', bytes], ['GET', undefined]] as const) {
        const target = method === 'PUT' ? withDigest(url, sha256(bytes)) : url;
        const response = await call(target, { method, ...(body ? { body, headers: OCTETS } : {}) });
        expect(response.status, `${method} ${url}`).toBe(404);
        expect(errorCodes(response)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
      }
    }
    // A session of another repository is not this one's.
    const other = await openUpload(base, 'team/p18-other');
    expect((await call(other.replace('p18-other', 'p18'))).status).toBe(404);
  });

  it('[P-19] a closing PUT without ?digest= or with a malformed one: 400 DIGEST_INVALID', async () => {
    const location = await openUpload(base, 'team/p19');
    for (const url of [location, `${location}?digest=sha256:abc`, `${location}?digest=md5:${'0'.repeat(32)}`]) {
      const response = await call(url, { method: 'PUT', headers: OCTETS, body: 'x' });
      expect(response.status, url).toBe(400);
      expect(errorCodes(response)).toEqual(['DIGEST_INVALID']);
    }
  });
});

describe('Pushing a blob monolithically: single POST', () => {
  it('[P-20] POST ?digest= with the blob is supported', async () => {
    const bytes = seededBytes(3000, 'p20');
    const response = await call(`${base}/v2/team/p20/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', headers: { ...OCTETS, 'content-length': String(bytes.length) }, body: bytes });
    expect(response.status).toBe(201);
    expect((await call(`${base}/v2/team/p20/blobs/${sha256(bytes)}`)).body.equals(bytes)).toBe(true);
  });

  it('[P-21] a digest that does not match: 400 DIGEST_INVALID; a body shorter than its Content-Length: 400; nothing stored either way', async () => {
    const bytes = Buffer.from('p21 bytes');
    const wrong = sha256(Buffer.from('p21 something else'));
    const response = await call(`${base}/v2/team/p21/blobs/uploads/?digest=${wrong}`, { method: 'POST', headers: OCTETS, body: bytes });
    expect(response.status).toBe(400);
    expect(errorCodes(response)).toEqual(['DIGEST_INVALID']);
    const short = await rawShortBody(`/v2/team/p21/blobs/uploads/?digest=${sha256(bytes)}`, bytes.length + 10, bytes);
    // Node's HTTP parser answers a body cut short itself (400, no OCI body); the upload code sees
    // the broken body as SIZE_INVALID (hosted/upload-body.test.ts) and stores nothing.
    expect(short).toMatch(/^HTTP\/1\.1 400/);
    for (const digest of [wrong, sha256(bytes)]) expect((await call(`${base}/v2/team/p21/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('[P-22] (a registry without single POST answers 202) this one supports it: 201, no session left to finish', async () => {
    const bytes = Buffer.from('p22');
    const response = await call(`${base}/v2/team/p22/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', headers: OCTETS, body: bytes });
    expect(response.status).toBe(201);
    expect(header(response, 'location')).not.toMatch(/uploads/);
  });

  it('[P-23] success: 201 with a pullable Location', async () => {
    const bytes = seededBytes(777, 'p23');
    const response = await call(`${base}/v2/team/p23/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', headers: OCTETS, body: bytes });
    expect(response.status).toBe(201);
    expect((await call(new URL(header(response, 'location')!, base).toString())).body.equals(bytes)).toBe(true);
  });
});

describe('Pushing a blob in chunks', () => {
  const patch = (location: string, body: Buffer, start: number) =>
    call(location, { method: 'PATCH', headers: { ...OCTETS, 'content-range': `${start}-${start + body.length - 1}`, 'content-length': String(body.length) }, body });

  it('[P-30] POST with Content-Length: 0 opens the session: 202 with a Location', async () => {
    const response = await call(`${base}/v2/team/p30/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
    expect(response.status).toBe(202);
    expect(header(response, 'location')).toMatch(UUID);
  });

  it('[P-31] no minimum chunk size, so no OCI-Chunk-Min-Length header', async () => {
    const response = await call(`${base}/v2/team/p31/blobs/uploads/`, { method: 'POST' });
    expect(header(response, 'oci-chunk-min-length')).toBeUndefined();
  });

  it('[P-32] chunks of any size are taken, the last one smaller or larger than the rest', async () => {
    const bytes = seededBytes(10_001, 'p32');
    const location = await openUpload(base, 'team/p32');
    expect((await patch(location, bytes.subarray(0, 1), 0)).status).toBe(202);
    expect((await patch(location, bytes.subarray(1, 9000), 1)).status).toBe(202);
    expect((await patch(location, bytes.subarray(9000), 9000)).status).toBe(202);
    expect((await call(withDigest(location, sha256(bytes)), { method: 'PUT', headers: { 'content-length': '0' } })).status).toBe(201);
  });

  it('[P-33] a chunk is a PATCH with Content-Type, Content-Range and Content-Length', async () => {
    const location = await openUpload(base, 'team/p33');
    expect((await patch(location, Buffer.from('0123456789'), 0)).status).toBe(202);
  });

  it('[P-34] Content-Range is inclusive and the first chunk starts at 0: 0-99 holds 100 bytes', async () => {
    const location = await openUpload(base, 'team/p34');
    const response = await patch(location, seededBytes(100, 'p34'), 0);
    expect(header(response, 'range')).toBe('0-99');
    const late = await openUpload(base, 'team/p34');
    expect((await patch(late, Buffer.from('abc'), 5)).status).toBe(416);
  });

  it('[P-35] each chunk: 202 Accepted', async () => {
    const location = await openUpload(base, 'team/p35');
    for (let start = 0; start < 300; start += 100) expect((await patch(location, seededBytes(100, `p35-${start}`), start)).status).toBe(202);
  });

  it('[P-36] the 202 carries Location and Range: 0-<last byte received>', async () => {
    const location = await openUpload(base, 'team/p36');
    await patch(location, seededBytes(100, 'p36a'), 0);
    const second = await patch(location, seededBytes(100, 'p36b'), 100);
    expect(header(second, 'range')).toBe('0-199');
    expect(new URL(header(second, 'location')!, base).toString()).toBe(location);
  });

  it('[P-37] the Location of each answer takes the next chunk', async () => {
    const bytes = seededBytes(300, 'p37');
    let location = await openUpload(base, 'team/p37');
    for (let start = 0; start < bytes.length; start += 100) {
      const response = await patch(location, bytes.subarray(start, start + 100), start);
      location = new URL(header(response, 'location')!, base).toString();
    }
    expect((await call(withDigest(location, sha256(bytes)), { method: 'PUT' })).status).toBe(201);
  });

  it('[P-38] a chunk out of order (gap, overlap, restart): 416, and the upload keeps what it had', async () => {
    const location = await openUpload(base, 'team/p38');
    await patch(location, seededBytes(100, 'p38'), 0);
    for (const start of [150, 50, 0]) {
      const response = await patch(location, Buffer.from('late chunk'), start);
      expect(response.status, `chunk at ${start}`).toBe(416);
      expect(errorCodes(response)).toEqual(['BLOB_UPLOAD_INVALID']);
      expect(header(response, 'range')).toBe('0-99');
    }
    expect(await uploadedRange(location)).toBe('0-99');
    const final = await call(withDigest(location, sha256(Buffer.from('x'))), { method: 'PUT', headers: { ...OCTETS, 'content-range': '120-120' }, body: 'x' });
    expect(final.status, 'a final chunk out of order in the PUT').toBe(416);
  });

  it('[P-39] the final chunk may come with the closing PUT', async () => {
    const bytes = seededBytes(250, 'p39');
    const location = await openUpload(base, 'team/p39');
    await patch(location, bytes.subarray(0, 200), 0);
    const response = await call(withDigest(location, sha256(bytes)), { method: 'PUT', headers: { ...OCTETS, 'content-range': '200-249', 'content-length': '50' }, body: bytes.subarray(200) });
    expect(response.status).toBe(201);
    expect((await call(`${base}/v2/team/p39/blobs/${sha256(bytes)}`)).body.equals(bytes)).toBe(true);
  });

  it('[P-40] the session closes with PUT ?digest= and an empty body (Content-Length: 0)', async () => {
    const bytes = seededBytes(64, 'p40');
    const location = await openUpload(base, 'team/p40');
    await patch(location, bytes, 0);
    expect((await call(withDigest(location, sha256(bytes)), { method: 'PUT', headers: { 'content-length': '0' } })).status).toBe(201);
  });

  it('[P-41] the closing digest is checked against the whole blob, not the last chunk', async () => {
    const bytes = seededBytes(200, 'p41');
    const location = await openUpload(base, 'team/p41');
    await patch(location, bytes.subarray(0, 100), 0);
    await patch(location, bytes.subarray(100), 100);
    const response = await call(withDigest(location, sha256(bytes.subarray(100))), { method: 'PUT' });
    expect(response.status).toBe(400);
    expect(errorCodes(response)).toEqual(['DIGEST_INVALID']);
    expect((await call(`${base}/v2/team/p41/blobs/${sha256(bytes.subarray(100))}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('[P-42] a successful close: 201 with a pullable Location', async () => {
    const bytes = seededBytes(120, 'p42');
    const location = await openUpload(base, 'team/p42');
    await patch(location, bytes, 0);
    const response = await call(withDigest(location, sha256(bytes)), { method: 'PUT' });
    expect(response.status).toBe(201);
    expect((await call(new URL(header(response, 'location')!, base).toString())).body.equals(bytes)).toBe(true);
  });

  it('[P-43] GET <location> of an active upload: 204 with Location and Range', async () => {
    const location = await openUpload(base, 'team/p43');
    await patch(location, seededBytes(42, 'p43'), 0);
    const response = await call(location);
    expect(response.status).toBe(204);
    expect(header(response, 'range')).toBe('0-41');
    expect(new URL(header(response, 'location')!, base).toString()).toBe(location);
  });

  it('[P-44] the Location a status GET returns takes the next chunk', async () => {
    const bytes = seededBytes(80, 'p44');
    const first = await openUpload(base, 'team/p44');
    await patch(first, bytes.subarray(0, 40), 0);
    const next = new URL(header(await call(first), 'location')!, base).toString();
    expect((await patch(next, bytes.subarray(40), 40)).status).toBe(202);
    expect((await call(withDigest(next, sha256(bytes)), { method: 'PUT' })).status).toBe(201);
  });

  it('[P-45] DELETE <location> cancels (204, then 404 BLOB_UPLOAD_UNKNOWN); abandoned uploads time out', async () => {
    const location = await openUpload(base, 'team/p45');
    await patch(location, seededBytes(10, 'p45'), 0);
    expect((await call(location, { method: 'DELETE' })).status).toBe(204);
    const gone = await call(location);
    expect(gone.status).toBe(404);
    expect(errorCodes(gone)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    const abandoned = await openUpload(base, 'team/p45');
    const expiry = env.mirror.config.hosted.uploadExpirySeconds * 1000;
    expect(await env.mirror.mirror.hosted.uploads.expire(Date.now() + expiry + 1000)).toBeGreaterThanOrEqual(1);
    expect((await call(abandoned)).status).toBe(404);
  });
});

describe('Mounting a blob from another repository', () => {
  it('[P-50] POST ?mount=&from= mounts the blob into the repository instead of opening an upload', async () => {
    const digest = await pushBlob(base, 'team/p50-source', Buffer.from('p50 layer'));
    expect((await call(`${base}/v2/team/p50/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    await call(`${base}/v2/team/p50/blobs/uploads/?mount=${digest}&from=team/p50-source`, { method: 'POST' });
    expect((await call(`${base}/v2/team/p50/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
  });

  it('[P-51] a mount answers 201 with a Location that serves the blob', async () => {
    const bytes = Buffer.from('p51 layer');
    const digest = await pushBlob(base, 'team/p51-source', bytes);
    const response = await call(`${base}/v2/team/p51/blobs/uploads/?mount=${digest}&from=team/p51-source`, { method: 'POST' });
    expect(response.status).toBe(201);
    expect((await call(new URL(header(response, 'location')!, base).toString())).body.equals(bytes)).toBe(true);
  });

  it('[P-52] the 201 carries Docker-Content-Digest', async () => {
    const digest = await pushBlob(base, 'team/p52-source', Buffer.from('p52 layer'));
    const response = await call(`${base}/v2/team/p52/blobs/uploads/?mount=${digest}&from=team/p52-source`, { method: 'POST' });
    expect(header(response, 'docker-content-digest')).toBe(digest);
  });

  it('[P-53] `from` is required: a mount without it opens an upload session (202)', async () => {
    const digest = await pushBlob(base, 'team/p53-source', Buffer.from('p53 layer'));
    const response = await call(`${base}/v2/team/p53/blobs/uploads/?mount=${digest}`, { method: 'POST' });
    expect(response.status).toBe(202);
    expect(header(response, 'location')).toMatch(UUID);
  });

  it('[P-54] a blob absent from `from`, or a `from` the caller may not read: 202 and a session to upload to', async () => {
    const digest = await pushBlob(base, 'team/p54-elsewhere', Buffer.from('p54 layer'));
    for (const from of ['team/p54-empty', 'quay.io/nothing', 'Not_A_Name']) {
      const response = await call(`${base}/v2/team/p54/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST' });
      expect(response.status, from).toBe(202);
      expect(header(response, 'location')).toMatch(UUID);
    }
    const guarded = await startHosted({
      users: { alice: 'alice-secret', bob: 'bob-secret' },
      config: { auth: { access: [{ users: ['alice'], repositories: ['team/alice/**'], actions: ['pull', 'push'] }, { users: ['bob'], repositories: ['team/bob/**'], actions: ['pull', 'push'] }] } },
    });
    try {
      const alice = { authorization: `Basic ${Buffer.from('alice:alice-secret').toString('base64')}` };
      const bob = { authorization: `Basic ${Buffer.from('bob:bob-secret').toString('base64')}` };
      const secret = await pushBlob(guarded.mirror.url, 'team/alice/private', Buffer.from('p54 alice only'), alice);
      const response = await call(`${guarded.mirror.url}/v2/team/bob/app/blobs/uploads/?mount=${secret}&from=team/alice/private`, { method: 'POST', headers: bob });
      expect(response.status, 'bob may not read team/alice/private').toBe(202);
      expect((await call(`${guarded.mirror.url}/v2/team/bob/app/blobs/${secret}`, { method: 'HEAD', headers: bob })).status).toBe(404);
    } finally {
      await guarded.close();
    }
  });

  it('[P-55] a mount into a name that takes no pushes: 404 for an unknown registry, 405 for a proxied name, 403 by access rules', async () => {
    const digest = await pushBlob(base, 'team/p55-source', Buffer.from('p55 layer'));
    const post = (name: string, headers: Record<string, string> = {}) => call(`${base}/v2/${name}/blobs/uploads/?mount=${digest}&from=team/p55-source`, { method: 'POST', headers });
    expect((await post('quay.io/app')).status).toBe(404);
    const proxied = await post('library/alpine');
    expect(proxied.status).toBe(405);
    expect(errorCodes(proxied)).toEqual(['UNSUPPORTED']);
    const readOnly = await startHosted({ config: { hosted: { allowAnonymousPush: false } } });
    try {
      const denied = await call(`${readOnly.mirror.url}/v2/team/app/blobs/uploads/?mount=${digest}&from=team/p55-source`, { method: 'POST' });
      expect(denied.status).toBe(403);
      expect(errorCodes(denied)).toEqual(['DENIED']);
    } finally {
      await readOnly.close();
    }
  });
});

describe('Pushing manifests', () => {
  const image = makeImage({ layers: [200, 300], seed: 'manifests' });
  beforeAll(async () => {
    for (const blob of [image.config, ...image.layers]) await pushBlob(base, 'team/manifests', blob.bytes);
  });

  it('[P-60] PUT /v2/<name>/manifests/<reference> with the manifest type as Content-Type', async () => {
    expect((await putManifest(base, 'team/manifests', 'p60', image.manifest)).status).toBe(201);
  });

  it('[P-61] Content-Type parameters are ignored', async () => {
    const response = await putManifest(base, 'team/manifests', 'p61', image.manifest, { 'content-type': `${OCI_MANIFEST}; charset=utf-8` });
    expect(response.status).toBe(201);
    expect(header(await call(`${base}/v2/team/manifests/manifests/p61`), 'content-type')).toBe(OCI_MANIFEST);
  });

  it('[P-62] a mediaType field that disagrees with Content-Type: 400 MANIFEST_INVALID naming mediaType; without Content-Type the field decides', async () => {
    const response = await putManifest(base, 'team/manifests', 'p62', image.manifest, { 'content-type': 'application/vnd.oci.image.index.v1+json' });
    expect(response.status).toBe(400);
    expect(errorCodes(response)).toEqual(['MANIFEST_INVALID']);
    expect(response.body.toString()).toContain('mediaType');
    const untyped = await call(`${base}/v2/team/manifests/manifests/p62`, { method: 'PUT', body: image.manifest.bytes });
    expect(untyped.status).toBe(201);
    expect(header(await call(`${base}/v2/team/manifests/manifests/p62`), 'content-type')).toBe(OCI_MANIFEST);
  });

  it('[P-63] the reference is a tag or a digest: a bad tag is 400 TAG_INVALID, a digest not of the body 400 DIGEST_INVALID', async () => {
    expect(errorCodes(await putManifest(base, 'team/manifests', '-bad-tag', image.manifest))).toEqual(['TAG_INVALID']);
    expect(errorCodes(await putManifest(base, 'team/manifests', 'sha256:1234', image.manifest))).toEqual(['DIGEST_INVALID']);
    const other = sha256(Buffer.from('not this manifest'));
    const response = await putManifest(base, 'team/manifests', other, image.manifest);
    expect(response.status).toBe(400);
    expect(errorCodes(response)).toEqual(['DIGEST_INVALID']);
    expect((await putManifest(base, 'team/manifests', image.manifest.digest, image.manifest)).status).toBe(201);
  });

  it('[P-64] an empty layer list is a valid manifest', async () => {
    const empty = makeImage({ layers: [], seed: 'p64' });
    expect((await pushImageTo(base, 'team/p64', 'empty', empty)).status).toBe(201);
  });

  it('[P-65] the manifest is stored in its exact bytes, served with the pushed type', async () => {
    const spaced = { ...image.manifest, bytes: Buffer.from(`  ${JSON.stringify(JSON.parse(image.manifest.bytes.toString()), null, 3)}\n`) };
    const response = await putManifest(base, 'team/manifests', 'p65', spaced);
    const pulled = await call(`${base}/v2/team/manifests/manifests/p65`);
    expect(pulled.body.equals(spaced.bytes)).toBe(true);
    expect(header(pulled, 'content-type')).toBe(OCI_MANIFEST);
    expect(header(response, 'docker-content-digest')).toBe(sha256(spaced.bytes));
  });

  it('[P-66] success: 201 Created', async () => {
    expect((await putManifest(base, 'team/manifests', 'p66', image.manifest)).status).toBe(201);
  });

  it('[P-67] the 201 carries a Location that serves the manifest', async () => {
    const response = await putManifest(base, 'team/manifests', 'p67', image.manifest);
    const pulled = await call(new URL(header(response, 'location')!, base).toString());
    expect(pulled.status).toBe(200);
    expect(pulled.body.equals(image.manifest.bytes)).toBe(true);
  });

  it('[P-68] the 201 carries Docker-Content-Digest: the body digest, by tag and by digest', async () => {
    expect(header(await putManifest(base, 'team/manifests', 'p68', image.manifest), 'docker-content-digest')).toBe(image.manifest.digest);
    expect(header(await putManifest(base, 'team/manifests', image.manifest.digest, image.manifest), 'docker-content-digest')).toBe(image.manifest.digest);
  });

  it('[P-69] a pull of a repository that does not exist: 404', async () => {
    const response = await call(`${base}/v2/team/never-pushed/manifests/latest`);
    expect(response.status).toBe(404);
    expect(errorCodes(response)).toEqual(['NAME_UNKNOWN']);
    expect(errorCodes(await call(`${base}/v2/team/manifests/manifests/never-tagged`))).toEqual(['MANIFEST_UNKNOWN']);
  });

  it('[P-70] a manifest over 4 MiB: 413 MANIFEST_INVALID, nothing stored', async () => {
    const big = paddedManifest(image, 4 * 1024 * 1024 + 1);
    const response = await putManifest(base, 'team/manifests', 'p70', big);
    expect(response.status).toBe(413);
    expect(errorCodes(response)).toEqual(['MANIFEST_INVALID']);
    expect((await call(`${base}/v2/team/manifests/manifests/p70`)).status).toBe(404);
  });

  it('[P-71] a manifest of exactly 4 MiB is accepted', async () => {
    const big = paddedManifest(image, 4 * 1024 * 1024);
    expect(big.bytes.length).toBe(4 * 1024 * 1024);
    expect((await putManifest(base, 'team/manifests', 'p71', big)).status).toBe(201);
    expect((await call(`${base}/v2/team/manifests/manifests/p71`)).body.equals(big.bytes)).toBe(true);
  });

  it('[P-72] anything but a manifest of an accepted type: 400 MANIFEST_INVALID', async () => {
    const manifest = JSON.parse(image.manifest.bytes.toString()) as Record<string, unknown>;
    const bodies: Array<[string, string, string]> = [
      ['not json', '{"schemaVersion":', OCI_MANIFEST],
      ['schemaVersion 1', JSON.stringify({ ...manifest, schemaVersion: 1 }), OCI_MANIFEST],
      ['bad digest', JSON.stringify({ ...manifest, config: { mediaType: 'application/json', digest: 'sha256:xyz', size: 1 } }), OCI_MANIFEST],
      ['negative size', JSON.stringify({ ...manifest, config: { mediaType: 'application/json', digest: image.config.digest, size: -1 } }), OCI_MANIFEST],
      ['fractional size', JSON.stringify({ ...manifest, config: { mediaType: 'application/json', digest: image.config.digest, size: 1.5 } }), OCI_MANIFEST],
      ['Docker schema 1', JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
      ['unknown type', JSON.stringify({ schemaVersion: 2 }), 'application/x-something'],
    ];
    for (const [what, body, type] of bodies) {
      const response = await call(`${base}/v2/team/manifests/manifests/p72`, { method: 'PUT', headers: { 'content-type': type }, body });
      expect(response.status, what).toBe(400);
      expect(errorCodes(response), what).toEqual(['MANIFEST_INVALID']);
    }
  });

  it('[P-73] (post-1.1.1 ?tag=, not implemented) a tag query parameter is ignored and no OCI-Tag is sent', async () => {
    const response = await putManifest(base, 'team/manifests', `${image.manifest.digest}?tag=p73`, image.manifest);
    expect(response.status).toBe(201);
    expect(header(response, 'oci-tag')).toBeUndefined();
    expect((await call(`${base}/v2/team/manifests/manifests/p73`)).status).toBe(404);
  });
});

describe('Pushing manifests with subject', () => {
  it('[P-80] a manifest (or index) with a subject is answered with OCI-Subject: <subject digest>', async () => {
    const subject = makeImage({ layers: [10], seed: 'p80-subject' });
    await pushImageTo(base, 'team/p80', 'v1', subject);
    const artifact = makeImage({ layers: [20], seed: 'p80', subject: subject.manifest, artifactType: 'application/vnd.example.sbom' });
    expect(header(await pushImageTo(base, 'team/p80', undefined, artifact), 'oci-subject')).toBe(subject.manifest.digest);
    const plain = makeImage({ layers: [21], seed: 'p80-plain' });
    expect(header(await pushImageTo(base, 'team/p80', 'plain', plain), 'oci-subject')).toBeUndefined();
    const index = makeIndex([plain]);
    const withSubject = JSON.parse(index.manifest.bytes.toString()) as Record<string, unknown>;
    withSubject.subject = { mediaType: OCI_MANIFEST, digest: subject.manifest.digest, size: subject.manifest.size };
    const bytes = Buffer.from(JSON.stringify(withSubject));
    expect(header(await putManifest(base, 'team/p80', 'index', { bytes, mediaType: index.manifest.mediaType }), 'oci-subject')).toBe(subject.manifest.digest);
  });

  it('[P-81] clients that read OCI-Subject need no referrers tag: the referrers API lists the artifact and no sha256-<hex> tag is made', async () => {
    const subject = makeImage({ layers: [10], seed: 'p81-subject' });
    await pushImageTo(base, 'team/p81', 'v1', subject);
    const artifact = makeImage({ layers: [20], seed: 'p81', subject: subject.manifest, artifactType: 'application/vnd.example.sig' });
    await pushImageTo(base, 'team/p81', undefined, artifact);
    const listed = JSON.parse((await call(`${base}/v2/team/p81/referrers/${subject.manifest.digest}`)).body.toString()) as { manifests: Array<{ digest: string }> };
    expect(listed.manifests.map((entry) => entry.digest)).toEqual([artifact.manifest.digest]);
    const tags = JSON.parse((await call(`${base}/v2/team/p81/tags/list`)).body.toString()) as { tags: string[] };
    expect(tags.tags).toEqual(['v1']);
  });
});

describe('What real clients send (checklist X-01..X-06)', () => {
  it('[X-01] a PATCH without Content-Range, chunked encoding, appends and answers 202 with Range', async () => {
    const bytes = seededBytes(3 * 1024 * 1024 + 5, 'x01');
    const location = await openUpload(base, 'team/x01');
    const stream = Readable.from((function* () {
      for (let offset = 0; offset < bytes.length; offset += 65_536) yield bytes.subarray(offset, offset + 65_536);
    })());
    const response = await call(location, { method: 'PATCH', headers: OCTETS, body: stream });
    expect(response.status).toBe(202);
    expect(header(response, 'range')).toBe(`0-${bytes.length - 1}`);
    expect((await call(withDigest(location, sha256(bytes)), { method: 'PUT', headers: { 'content-length': '0' } })).status).toBe(201);
  });

  it('[X-02] POST then one PUT with the whole body (containerd)', async () => {
    const bytes = seededBytes(1000, 'x02');
    expect(await pushBlob(base, 'team/x02', bytes)).toBe(sha256(bytes));
  });

  it('[X-03] the client keeps the Location query and appends digest=', async () => {
    const bytes = Buffer.from('x03');
    const location = new URL(await openUpload(base, 'team/x03'));
    location.search = '?_state=abc';
    expect((await call(`${location.toString()}&digest=${sha256(bytes)}`, { method: 'PUT', body: bytes })).status).toBe(201);
  });

  it('[X-04] HEAD of a blob before uploading (404, then 200) and of the manifest after pushing', async () => {
    const image = makeImage({ layers: [50], seed: 'x04' });
    expect((await call(`${base}/v2/team/x04/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' })).status).toBe(404);
    await pushImageTo(base, 'team/x04', 'v1', image);
    const blob = await call(`${base}/v2/team/x04/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' });
    expect([blob.status, header(blob, 'content-length')]).toEqual([200, '50']);
    const manifest = await call(`${base}/v2/team/x04/manifests/v1`, { method: 'HEAD' });
    expect([manifest.status, header(manifest, 'docker-content-digest')]).toEqual([200, image.manifest.digest]);
  });

  it('[X-05] a mount from the repository a layer was pushed to before', async () => {
    const image = makeImage({ layers: [60], seed: 'x05' });
    await pushImageTo(base, 'my-image', 'v1', image);
    const response = await call(`${base}/v2/team/app/blobs/uploads/?mount=${image.layers[0]!.digest}&from=my-image`, { method: 'POST' });
    expect(response.status).toBe(201);
  });

  it('[X-06] with htpasswd: GET /v2/ and an unauthenticated HEAD or POST get 401 with a Basic challenge', async () => {
    const secured = await startHosted({ users: { pusher: 'push-secret' } });
    try {
      for (const [method, path] of [['GET', '/v2/'], ['HEAD', `/v2/team/app/blobs/${sha256(Buffer.from('x'))}`], ['POST', '/v2/team/app/blobs/uploads/']]) {
        const response = await call(`${secured.mirror.url}${path}`, { method });
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(header(response, 'www-authenticate')).toMatch(/^Basic realm="/);
      }
      const pusher = { authorization: `Basic ${Buffer.from('pusher:push-secret').toString('base64')}` };
      expect(await pushBlob(secured.mirror.url, 'team/app', Buffer.from('x06'), pusher)).toBe(sha256(Buffer.from('x06')));
    } finally {
      await secured.close();
    }
  });
});

/** The image's manifest padded with an annotation to exactly `size` bytes. */
function paddedManifest(image: ReturnType<typeof makeImage>, size: number): { bytes: Buffer; mediaType: string } {
  const document = JSON.parse(image.manifest.bytes.toString()) as Record<string, unknown>;
  const withPad = (pad: string) => Buffer.from(JSON.stringify({ ...document, annotations: { pad } }));
  const overhead = withPad('').length;
  return { bytes: withPad('x'.repeat(size - overhead)), mediaType: image.manifest.mediaType };
}

/** A raw POST whose body is shorter than its Content-Length, the socket half-closed after it; the answer's head. */
async function rawShortBody(path: string, announced: number, body: Buffer): Promise<string> {
  const { connect } = await import('node:net');
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true }, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${announced}\r\n\r\n`);
      socket.end(body);
    });
    let answer = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer to a short body within 10 s')));
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}
