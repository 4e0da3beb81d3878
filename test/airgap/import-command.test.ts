/**
 * Issue 12 item 9 through the command line (`registry-mirror import`, run as a child process):
 * a malformed archive or a bad file ends in one line on stderr and exit status 1, never a stack
 * trace; a tag the cache has is re-pointed only with `--retag`, which `import --help` documents.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { blobOf, makeImage } from '../helpers/test-images.js';
import { tempDir } from './airgap-fixture.js';
import { blobsOf, indexJsonOf, writeLayoutArchive } from './crafted-archives.js';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const image = makeImage({ layers: [1_500], seed: 'cli-a' });
const other = makeImage({ layers: [1_200], seed: 'cli-b' });

let work: { dir: string; remove: () => Promise<void> };
let config: string;
beforeAll(async () => {
  work = await tempDir('mirror-import-cli-');
  config = path.join(work.dir, 'mirror.config.json');
  await writeFile(config, JSON.stringify({ log: { level: 'warn' }, cache: { dir: path.join(work.dir, 'cache'), maxBytes: 2 ** 30 }, upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } } }));
});
afterAll(async () => {
  await work?.remove();
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

const file = (name: string) => path.join(work.dir, name);

async function craft(): Promise<Record<string, string>> {
  const good = indexJsonOf([{ image, refName: 'docker.io/library/app:1' }]);
  await writeLayoutArchive(file('good.tar'), good, blobsOf([image]));
  const tarBytes = readFileSync(file('good.tar'));
  await writeFile(file('random.tar'), Buffer.from(Array.from({ length: 5_000 }, (_, i) => (i * 7919) % 251)));
  await writeFile(file('cut.tar'), tarBytes.subarray(0, 1_300));
  await writeFile(file('gzipped.tar.gz'), gzipSync(tarBytes));
  await writeLayoutArchive(file('index-not-json.tar'), Buffer.from('{"manifests": [ {"digest": "sha256:'), blobsOf([image]));
  await writeLayoutArchive(file('index-bad-entry.tar'), Buffer.from('{"manifests":[{"digest":"sha256:abc","size":"x"},7]}'), []);
  await writeLayoutArchive(file('no-index.tar'), undefined, blobsOf([image]));
  const entry = JSON.parse(indexJsonOf([{ image, refName: 'docker.io/library/app:1' }]).toString()).manifests[0];
  await writeLayoutArchive(file('ref-name-number.tar'), Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ ...entry, annotations: { 'org.opencontainers.image.ref.name': 5 } }] })), blobsOf([image]));
  await writeLayoutArchive(file('media-type-number.tar'), Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ ...entry, mediaType: 5 }] })), blobsOf([image]));
  await mkdir(file('a-directory'), { recursive: true });
  return {
    'not a tar at all': file('random.tar'),
    'a tar cut short': file('cut.tar'),
    'a gzipped tar': file('gzipped.tar.gz'),
    'an index.json that is not JSON': file('index-not-json.tar'),
    'an index.json whose entry is not a descriptor': file('index-bad-entry.tar'),
    'no index.json': file('no-index.tar'),
    'an index.json entry whose ref.name annotation is a number': file('ref-name-number.tar'),
    'an index.json entry whose mediaType is a number': file('media-type-number.tar'),
    'a file that does not exist': file('nothing-here.tar'),
    'a directory': file('a-directory'),
  };
}

describe('registry-mirror import', () => {
  it('answers every malformed archive and bad file with one line on stderr and exit status 1', async () => {
    const cases = await craft();
    for (const [what, archive] of Object.entries(cases)) {
      const outcome = await cli(['import', '--config', config, archive]);
      expect(outcome.code, `${what}: ${outcome.stderr}`).toBe(1);
      expect(outcome.stderr, what).not.toMatch(/\n\s+at /);
      const lines = outcome.stderr.trim().split('\n');
      expect(lines, `${what}: ${outcome.stderr}`).toHaveLength(1);
      expect(lines[0], what).toMatch(/^(registry-mirror: import: |error: )\S/);
      if (what.includes('ref.name')) expect(lines[0], what).toMatch(/manifests\[0\]\.annotations\["org\.opencontainers\.image\.ref\.name"\]: expected a string/);
      if (what.includes('mediaType is')) expect(lines[0], what).toMatch(/manifests\[0\]\.mediaType: expected a string/);
    }
  }, 180_000);

  it('a stored blob an index entry names as a manifest, under a size claim it does not have, is refused by its real size, not read whole', async () => {
    const big = blobOf(Buffer.alloc(5 * 1024 * 1024), 'application/vnd.oci.image.manifest.v1+json');
    const index = { schemaVersion: 2, manifests: [{ mediaType: big.mediaType, digest: big.digest, size: 10, annotations: { 'org.opencontainers.image.ref.name': 'docker.io/library/spill:1' } }] };
    await writeLayoutArchive(file('spill.tar'), Buffer.from(JSON.stringify(index)), [big]);
    const outcome = await cli(['import', '--config', config, file('spill.tar')]);
    expect(outcome.code).toBe(1);
    expect(outcome.stdout).toMatch(/docker\.io\/library\/spill:1\s+FAILED\s+.*5242880 bytes, more than the 4194304 a manifest may have/);
  }, 60_000);

  it('an image whose blobs the cache budget evicted during the import gets no tag, and the failure names cache.maxBytes', async () => {
    const small = path.join(work.dir, 'small.config.json');
    await writeFile(small, JSON.stringify({ log: { level: 'warn' }, cache: { dir: path.join(work.dir, 'small-cache'), maxBytes: 200_000 }, upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } } }));
    const budget = makeImage({ layers: [90_000, 90_000, 90_000, 90_000], seed: 'over-budget' });
    await writeLayoutArchive(file('budget.tar'), indexJsonOf([{ image: budget, refName: 'docker.io/library/budget:1' }]), blobsOf([budget]));
    const outcome = await cli(['import', '--config', small, file('budget.tar')]);
    expect(outcome.code, outcome.stdout).toBe(1);
    expect(outcome.stdout).toMatch(/docker\.io\/library\/budget:1\s+FAILED\s+.*evicted .*cache\.maxBytes/);
  }, 60_000);

  it('SIGTERM in the middle of an archive on stdin: the spool directory outside the cache is removed', async () => {
    const spoolRoot = path.join(work.dir, 'spool-root');
    await mkdir(spoolRoot, { recursive: true });
    await writeLayoutArchive(file('to-cut.tar'), indexJsonOf([{ image, refName: 'docker.io/library/cut:1' }]), blobsOf([image]));
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'import', '--config', config, '-'], { env: { ...process.env, TMPDIR: spoolRoot }, stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    // The archive without its last blocks, and stdin left open: the import waits for the rest.
    child.stdin.write(readFileSync(file('to-cut.tar')).subarray(0, 3_000));
    await waitFor(() => readdirSync(spoolRoot).some((entry) => entry.startsWith('registry-mirror-import-')), 30_000, 'the spool directory');
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    expect(readdirSync(spoolRoot).filter((entry) => entry.startsWith('registry-mirror-import-'))).toEqual([]);
  }, 60_000);

  it('re-points a tag the cache has only with --retag, and says so in its help', async () => {
    await writeLayoutArchive(file('first.tar'), indexJsonOf([{ image, refName: 'docker.io/library/tagged:1' }]), blobsOf([image]));
    await writeLayoutArchive(file('second.tar'), indexJsonOf([{ image: other, refName: 'docker.io/library/tagged:1' }]), blobsOf([other]));
    const first = await cli(['import', '--config', config, file('first.tar')]);
    expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
    const refused = await cli(['import', '--config', config, file('second.tar')]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/docker\.io\/library\/tagged:1\s+FAILED\s+.*points to .* --retag/);
    const retagged = await cli(['import', '--retag', '--config', config, file('second.tar')]);
    expect(retagged.code, `${retagged.stdout}\n${retagged.stderr}`).toBe(0);
    expect(retagged.stdout).toMatch(/docker\.io\/library\/tagged:1\s+ok/);
    const help = await cli(['import', '--help']);
    expect(help.stdout).toMatch(/--retag\s+re-point tags the cache already has/);
  }, 120_000);
});
