/**
 * Makes the fixture of the upgrade check (test/interop/upgrade.test.ts): a cache directory filled
 * by a build of an earlier release, packed as a .tar.gz beside the test. Run once per release
 * worth checking; the test needs neither the old build nor its dependencies afterwards.
 *
 *   git worktree add --detach /tmp/old-release 7997902
 *   (cd /tmp/old-release && <node_modules as that release had them> && npx tsc -p tsconfig.build.json)
 *   node --import tsx scripts/make-upgrade-fixture.ts --main /tmp/old-release/dist/main.js --release 7997902
 *
 * It starts fake upstreams (docker.io with bearer tokens, gcr.io without) holding the images of
 * test/interop/support/upgrade-images.ts, runs `<main> serve` on a fresh cache in front of them,
 * pulls every image whole through it (checking every digest), stops it with SIGTERM so it
 * flushes its metadata, and packs the cache directory as the release left it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { startFakeRegistry } from '../test/helpers/fake-registry.js';
import { publishUpgradeImages, pullWhole, upgradeImages } from '../test/interop/support/upgrade-images.js';

const { values: args } = parseArgs({ options: { main: { type: 'string' }, release: { type: 'string' }, out: { type: 'string', default: 'test/interop/fixtures' } } });
if (!args.main || !args.release) throw new Error('usage: make-upgrade-fixture.ts --main <old dist/main.js> --release <commit>');

const hub = await startFakeRegistry({ auth: 'bearer' });
const gcr = await startFakeRegistry();
publishUpgradeImages({ 'docker.io': hub, 'gcr.io': gcr });
const work = await mkdtemp(path.join(tmpdir(), 'upgrade-fixture-'));
const cacheDir = path.join(work, 'cache');
const config = path.join(work, 'mirror.config.json');
await writeFile(config, JSON.stringify({
  listen: { host: '127.0.0.1', port: 0 },
  cache: { dir: cacheDir, maxBytes: 2 ** 30 },
  log: { level: 'warn' },
  defaultUpstream: 'docker.io',
  upstreams: { 'docker.io': { url: hub.url, tokenRealms: [new URL(hub.tokenUrl).host] }, 'gcr.io': { url: gcr.url } },
}));
const child = spawn(process.execPath, ['--max-semi-space-size=4', args.main, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
try {
  const url = await new Promise<string>((resolve, reject) => {
    void exited.then((code) => reject(new Error(`the old release exited with ${code} before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = (() => { try { return JSON.parse(line) as { msg?: string; url?: string }; } catch { return {}; } })();
      if (entry.msg === 'listening' && entry.url) resolve(entry.url);
    });
  });
  for (const entry of upgradeImages()) {
    const read = await pullWhole(url, entry);
    process.stderr.write(`pulled ${entry.upstream}/${entry.repository}:${entry.tag} (${read.length} objects) through ${args.release}\n`);
  }
} finally {
  child.kill('SIGTERM');
  await exited;
  await hub.close();
  await gcr.close();
}
const out = path.join(args.out!, `cache-${args.release}.tar.gz`);
await pack(cacheDir, out);
const images = upgradeImages().map((entry) => ({ upstream: entry.upstream, repository: entry.repository, tag: entry.tag, digest: entry.image.manifest.digest }));
await writeFile(path.join(args.out!, `cache-${args.release}.json`), `${JSON.stringify({ release: args.release, madeAt: new Date().toISOString(), images }, null, 2)}\n`);
await rm(work, { recursive: true, force: true });
process.stderr.write(`wrote ${out} (${(await stat(out)).size} bytes)\n`);

/** Every file under `dir`, with paths relative to it and the modes and times the release left. */
async function pack(dir: string, file: string): Promise<void> {
  const packer = tar.pack();
  const writing = pipeline(packer, createGzip({ level: 9 }), createWriteStream(file));
  const entries = (await readdir(dir, { recursive: true, withFileTypes: true })).sort((a, b) => path.join(a.parentPath, a.name).localeCompare(path.join(b.parentPath, b.name)));
  for (const entry of entries) {
    const full = path.join(entry.parentPath, entry.name);
    const name = path.relative(dir, full);
    const info = await stat(full);
    if (entry.isDirectory()) packer.entry({ name: `${name}/`, type: 'directory', mode: 0o755, mtime: info.mtime });
    else if (entry.isFile()) await new Promise<void>((resolve, reject) => readFile(full).then((bytes) => packer.entry({ name, mode: 0o644, mtime: info.mtime }, bytes, (error) => (error ? reject(error) : resolve())), reject));
  }
  packer.finalize();
  await writing;
}
