/**
 * `import` applies the same manifest media type rule as pulls (issue 12 item 4): a manifest in
 * an archive that names a type outside the known set, or a different type than its descriptor,
 * is refused: not stored, no tag, and the other images of the archive still come in.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/domain/digest.js';
import { importFrom, tempDir, toolMirror, writeTar } from './airgap-fixture.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const REF_NAME = 'org.opencontainers.image.ref.name';

let work: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  work = await tempDir('import-types-');
});
afterAll(() => work?.remove());

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const blobEntry = (bytes: Buffer) => ({ name: `blobs/sha256/${digestOf(bytes).slice(7)}`, bytes });

function image(seed: string, manifestType: string | undefined) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  const fields = { schemaVersion: 2, ...(manifestType === undefined ? {} : { mediaType: manifestType }) };
  const manifest = Buffer.from(JSON.stringify({
    ...fields,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
  }));
  return { entries: [blobEntry(config), blobEntry(layer), blobEntry(manifest)], manifest };
}

describe('import and manifest media types', () => {
  it('refuses a manifest of an unknown type or one that disagrees with its descriptor, and imports the rest', async () => {
    const good = image('good', OCI_MANIFEST);
    const html = image('html', 'text/html');
    const mismatch = image('mismatch', 'application/vnd.docker.distribution.manifest.v2+json');
    const descriptor = (manifest: Buffer, ref: string) => ({ mediaType: OCI_MANIFEST, digest: digestOf(manifest), size: manifest.length, annotations: { [REF_NAME]: ref } });
    const index = { schemaVersion: 2, manifests: [descriptor(good.manifest, 'docker.io/library/good:1'), descriptor(html.manifest, 'docker.io/library/html:1'), descriptor(mismatch.manifest, 'docker.io/library/mismatch:1')] };
    const file = path.join(work.dir, 'types.tar');
    await writeTar(file, [
      { name: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      ...good.entries, ...html.entries, ...mismatch.entries,
      { name: 'index.json', bytes: Buffer.from(JSON.stringify(index)) },
    ]);
    const tool = await toolMirror(path.join(work.dir, 'cache'), { 'docker.io': 'http://127.0.0.1:9' });
    try {
      const result = await importFrom(tool, file);
      const byName = Object.fromEntries(result.images.map((one) => [one.name, one]));
      expect(byName['docker.io/library/good:1']).toMatchObject({ tag: 'docker.io/library/good:1' });
      expect(byName['docker.io/library/good:1']!.error).toBeUndefined();
      expect(byName['docker.io/library/html:1']!.error).toContain('"text/html", which is not a manifest media type');
      expect(byName['docker.io/library/mismatch:1']!.error).toContain('names itself');
      for (const [repository, manifest] of [['library/html', html.manifest], ['library/mismatch', mismatch.manifest]] as const) {
        expect(await tool.metadata.tags.get(`docker.io/${repository}`, '1')).toBeUndefined();
        expect(await tool.manifests.read(parseDigest(digestOf(manifest)))).toBeUndefined();
      }
      expect((await tool.manifests.read(parseDigest(digestOf(good.manifest))))?.mediaType).toBe(OCI_MANIFEST);
    } finally {
      await tool.close();
    }
  });
});
