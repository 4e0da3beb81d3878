/**
 * OCI distribution-spec v1.1 "Content Management" (deleting tags, manifests and blobs) and the
 * error format the push sections rely on, one test per line of
 * test/hosted/distribution-spec-checklist.md. Deletes need credentials (auth.htpasswd), so this
 * mirror has them; the proxied names (read-only) stand for "deletion disabled".
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, sha256 } from '../helpers/http.js';
import { makeImage } from '../helpers/test-images.js';
import { call, errorCodes, header, pushBlob, pushImageTo, putManifest, startHosted, upstreamWrites, type HostedSetup } from './hosted-fixture.js';

let env: HostedSetup;
let base: string;
const AUTH = { authorization: basicAuth('admin', 'admin-secret') };
const PROXIED = '/v2/library/alpine';

beforeAll(async () => {
  env = await startHosted({ users: { admin: 'admin-secret' } });
  base = env.mirror.url;
});
afterAll(async () => {
  await env?.close();
});
afterEach(() => {
  expect(upstreamWrites(env.upstream), 'writes that reached the upstream').toBe(0);
});

const del = (path: string) => call(`${base}${path}`, { method: 'DELETE', headers: AUTH });
const get = (path: string, method = 'GET') => call(`${base}${path}`, { method, headers: AUTH });

async function pushed(repository: string, seed: string, tag = 'v1', extra: Parameters<typeof makeImage>[0] = { layers: [100], seed }) {
  const image = makeImage({ ...extra, seed });
  await pushImageTo(base, repository, tag, image, AUTH);
  return image;
}

describe('Content Management', () => {
  it('[M-00] deletion is implemented for hosted repositories and refused (405 UNSUPPORTED) for proxied ones', async () => {
    const image = await pushed('team/m00', 'm00');
    expect((await del(`/v2/team/m00/manifests/${image.manifest.digest}`)).status).toBe(202);
    for (const path of [`${PROXIED}/manifests/latest`, `${PROXIED}/manifests/${image.manifest.digest}`, `${PROXIED}/blobs/${image.layers[0]!.digest}`]) {
      const response = await del(path);
      expect([response.status, errorCodes(response)], path).toEqual([405, ['UNSUPPORTED']]);
      expect(header(response, 'allow')).toBe('GET, HEAD');
    }
  });
});

describe('Deleting tags', () => {
  it('[M-01] DELETE /v2/<name>/manifests/<tag>: 202 Accepted', async () => {
    await pushed('team/m01', 'm01');
    expect((await del('/v2/team/m01/manifests/v1')).status).toBe(202);
  });

  it('[M-02] tag deletion disabled (proxied names): 405', async () => {
    expect((await del(`${PROXIED}/manifests/3.20`)).status).toBe(405);
  });

  it('[M-03] afterwards the tag is 404 MANIFEST_UNKNOWN; the manifest stays reachable by digest and other tags', async () => {
    const image = await pushed('team/m03', 'm03');
    await putManifest(base, 'team/m03', 'v2', image.manifest, AUTH);
    await del('/v2/team/m03/manifests/v1');
    const gone = await get('/v2/team/m03/manifests/v1');
    expect([gone.status, errorCodes(gone)]).toEqual([404, ['MANIFEST_UNKNOWN']]);
    expect((await get(`/v2/team/m03/manifests/${image.manifest.digest}`)).body.equals(image.manifest.bytes)).toBe(true);
    expect((await get('/v2/team/m03/manifests/v2')).status).toBe(200);
    expect(JSON.parse((await get('/v2/team/m03/tags/list')).body.toString())).toEqual({ name: 'team/m03', tags: ['v2'] });
  });

  it('[M-04] a tag the repository does not have: 404 MANIFEST_UNKNOWN', async () => {
    await pushed('team/m04', 'm04');
    const response = await del('/v2/team/m04/manifests/never');
    expect([response.status, errorCodes(response)]).toEqual([404, ['MANIFEST_UNKNOWN']]);
  });
});

describe('Deleting manifests', () => {
  it('[M-10] DELETE /v2/<name>/manifests/<digest>: 202 Accepted', async () => {
    const image = await pushed('team/m10', 'm10');
    expect((await del(`/v2/team/m10/manifests/${image.manifest.digest}`)).status).toBe(202);
  });

  it('[M-11] a repository that does not exist: 404 NAME_UNKNOWN; a manifest it does not have: 404 MANIFEST_UNKNOWN', async () => {
    const image = await pushed('team/m11', 'm11');
    const noRepository = await del(`/v2/team/m11-nothing/manifests/${image.manifest.digest}`);
    expect([noRepository.status, errorCodes(noRepository)]).toEqual([404, ['NAME_UNKNOWN']]);
    const noManifest = await del(`/v2/team/m11/manifests/${sha256(Buffer.from('m11 other'))}`);
    expect([noManifest.status, errorCodes(noManifest)]).toEqual([404, ['MANIFEST_UNKNOWN']]);
  });

  it('[M-12] manifest deletion disabled (proxied names): 405', async () => {
    expect((await del(`${PROXIED}/manifests/${sha256(Buffer.from('m12'))}`)).status).toBe(405);
  });

  it('[M-13] afterwards the digest and every tag that pointed at it are 404', async () => {
    const image = await pushed('team/m13', 'm13');
    await putManifest(base, 'team/m13', 'stable', image.manifest, AUTH);
    const other = await pushed('team/m13', 'm13-other', 'other');
    await del(`/v2/team/m13/manifests/${image.manifest.digest}`);
    for (const reference of [image.manifest.digest, 'v1', 'stable']) expect((await get(`/v2/team/m13/manifests/${reference}`)).status, reference).toBe(404);
    expect((await get('/v2/team/m13/manifests/other')).body.equals(other.manifest.bytes)).toBe(true);
    expect(JSON.parse((await get('/v2/team/m13/tags/list')).body.toString())).toEqual({ name: 'team/m13', tags: ['other'] });
  });

  it('[M-14] a deleted manifest with a subject leaves its subject\'s referrers list', async () => {
    const subject = await pushed('team/m14', 'm14-subject');
    const artifact = makeImage({ layers: [20], seed: 'm14', subject: subject.manifest, artifactType: 'application/vnd.example.sig' });
    await pushImageTo(base, 'team/m14', undefined, artifact, AUTH);
    const listed = async () => (JSON.parse((await get(`/v2/team/m14/referrers/${subject.manifest.digest}`)).body.toString()) as { manifests: unknown[] }).manifests.length;
    expect(await listed()).toBe(1);
    await del(`/v2/team/m14/manifests/${artifact.manifest.digest}`);
    expect(await listed()).toBe(0);
  });
});

describe('Deleting blobs', () => {
  it('[M-20] DELETE /v2/<name>/blobs/<digest>: 202, then HEAD and GET are 404', async () => {
    const digest = await pushBlob(base, 'team/m20', Buffer.from('m20 blob'), AUTH);
    expect((await del(`/v2/team/m20/blobs/${digest}`)).status).toBe(202);
    expect((await get(`/v2/team/m20/blobs/${digest}`, 'HEAD')).status).toBe(404);
    const response = await get(`/v2/team/m20/blobs/${digest}`);
    expect([response.status, errorCodes(response)]).toEqual([404, ['BLOB_UNKNOWN']]);
  });

  it('[M-21] a blob the repository does not have: 404 BLOB_UNKNOWN', async () => {
    const digest = await pushBlob(base, 'team/m21-elsewhere', Buffer.from('m21 blob'), AUTH);
    for (const path of [`/v2/team/m21/blobs/${digest}`, `/v2/team/m21/blobs/${sha256(Buffer.from('m21 never'))}`]) {
      const response = await del(path);
      expect([response.status, errorCodes(response)], path).toEqual([404, ['BLOB_UNKNOWN']]);
    }
    expect((await get(`/v2/team/m21-elsewhere/blobs/${digest}`, 'HEAD')).status).toBe(200);
  });

  it('[M-22] blob deletion disabled (proxied names): 405', async () => {
    expect((await del(`${PROXIED}/blobs/${sha256(Buffer.from('m22'))}`)).status).toBe(405);
  });

  it('[M-23] a malformed digest: 400 DIGEST_INVALID', async () => {
    const response = await del('/v2/team/m23/blobs/sha256:abc');
    expect([response.status, errorCodes(response)]).toEqual([400, ['DIGEST_INVALID']]);
  });
});

describe('Error codes', () => {
  it('[E-01] a 4xx JSON body is {"errors":[{"code","message","detail"?}]}', async () => {
    const response = await get('/v2/team/e01/manifests/none');
    expect(header(response, 'content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(response.body.toString()) as { errors: Array<Record<string, unknown>> };
    for (const entry of body.errors) {
      expect(typeof entry.code).toBe('string');
      expect(Object.keys(entry).every((key) => ['code', 'message', 'detail'].includes(key))).toBe(true);
    }
  });

  it('[E-02] codes are upper-case letters and underscores, from the spec\'s list', async () => {
    const SPEC_CODES = ['BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS'];
    const image = makeImage({ layers: [10], seed: 'e02' });
    const answers = [
      await get('/v2/team/e02/blobs/uploads/00000000-0000-4000-8000-000000000000'),
      await putManifest(base, 'team/e02', 'v1', image.manifest, AUTH),
      await get('/v2/Bad_Name/manifests/v1'),
      await call(`${base}/v2/`),
    ];
    for (const answer of answers) {
      for (const code of errorCodes(answer)) {
        expect(code).toMatch(/^[A-Z_]+$/);
        expect(SPEC_CODES).toContain(code);
      }
    }
  });

  it('[E-03] each code takes its status: 404, 416, 400, 401 with a challenge, 403, 405 with Allow', async () => {
    const location = new URL(header(await call(`${base}/v2/team/e03/blobs/uploads/`, { method: 'POST', headers: AUTH }), 'location')!, base).toString();
    const outOfOrder = await call(location, { method: 'PATCH', headers: { ...AUTH, 'content-range': '5-9' }, body: 'abcde' });
    expect([outOfOrder.status, errorCodes(outOfOrder)]).toEqual([416, ['BLOB_UPLOAD_INVALID']]);
    const unknownUpload = await get('/v2/team/e03/blobs/uploads/00000000-0000-4000-8000-000000000000');
    expect([unknownUpload.status, errorCodes(unknownUpload)]).toEqual([404, ['BLOB_UPLOAD_UNKNOWN']]);
    const image = makeImage({ layers: [10], seed: 'e03' });
    const missing = await putManifest(base, 'team/e03', 'v1', image.manifest, AUTH);
    expect([missing.status, errorCodes(missing)[0]]).toEqual([400, 'MANIFEST_BLOB_UNKNOWN']);
    const anonymous = await call(`${base}/v2/team/e03/tags/list`);
    expect([anonymous.status, errorCodes(anonymous)]).toEqual([401, ['UNAUTHORIZED']]);
    expect(header(anonymous, 'www-authenticate')).toMatch(/^Basic realm=/);
    const proxiedWrite = await call(`${base}${PROXIED}/blobs/uploads/`, { method: 'POST', headers: AUTH });
    expect([proxiedWrite.status, errorCodes(proxiedWrite), header(proxiedWrite, 'allow')]).toEqual([405, ['UNSUPPORTED'], '']);
    expect((JSON.parse(proxiedWrite.body.toString()) as { errors: Array<{ message: string }> }).errors[0]!.message).toContain('hosted repositories (which take pushes): "team/**", "my-image"');
    const ruled = await startHosted({ users: { reader: 'reader-secret' }, config: { auth: { access: [{ users: ['*'], repositories: ['team/**'], actions: ['pull'] }] } } });
    try {
      const denied = await call(`${ruled.mirror.url}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basicAuth('reader', 'reader-secret') } });
      expect([denied.status, errorCodes(denied)]).toEqual([403, ['DENIED']]);
    } finally {
      await ruled.close();
    }
  });
});
