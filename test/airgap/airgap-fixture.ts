/**
 * Set-up shared by the air-gap suites: a mirror composed exactly as the CLI tools compose it,
 * on a cache directory of the test's choosing, plus small tar helpers to look inside archives.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { composeMirror, type Mirror } from '../../src/compose.js';
import { parseMirrorConfig } from '../../src/config/mirror-config.js';
import { createLogger } from '../../src/log.js';
import { planExport } from '../../src/airgap/export-plan.js';
import { importOciArchive, type ImportResult } from '../../src/airgap/import-archive.js';
import { writeOciArchive } from '../../src/airgap/oci-archive-writer.js';
import { warmImage, type WarmResult } from '../../src/airgap/warm-image.js';
import type { Platform } from '../../src/airgap/image-walk.js';

export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A mirror as `warm`/`export`/`import` build it; `upstreams` maps names to URLs. */
export async function toolMirror(cacheDir: string, upstreams: Record<string, string>, extra: Record<string, unknown> = {}): Promise<Mirror> {
  const config = parseMirrorConfig({
    log: { level: 'silent' },
    cache: { dir: cacheDir, maxBytes: 2 ** 30 },
    upstreams: Object.fromEntries(Object.entries(upstreams).map(([name, url]) => [name, { url }])),
    ...extra,
  });
  return composeMirror(config, createLogger('silent'), { reconcile: 'skip', prefetch: false });
}

export async function warm(mirror: Mirror, images: string[], filter?: Platform[]): Promise<WarmResult[]> {
  const progress = { addTotal: () => {}, advance: () => {} };
  return Promise.all(images.map((image) => warmImage(mirror, image, filter, progress)));
}

export async function exportTo(mirror: Mirror, images: string[] | 'all', file: string) {
  const plan = await planExport(mirror, images);
  const progress = { image: () => ({ advance: () => {}, finish: () => {} }) };
  await writeOciArchive(plan.images, mirror.content, createWriteStream(file), progress);
  return plan;
}

export function importFrom(mirror: Mirror, file: string): Promise<ImportResult> {
  return importOciArchive(createReadStream(file), mirror);
}

/** Every file entry of a tar, in order, with its bytes. */
export async function readTar(file: string): Promise<Array<{ name: string; bytes: Buffer }>> {
  const extract = tar.extract();
  createReadStream(file).pipe(extract);
  const entries: Array<{ name: string; bytes: Buffer }> = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (entry.header.type === 'file') entries.push({ name: entry.header.name, bytes: Buffer.concat(chunks) });
  }
  return entries;
}

/** Writes a tar with the given entries, in order. */
export async function writeTar(file: string, entries: Array<{ name: string; bytes: Buffer }>): Promise<void> {
  const pack = tar.pack();
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => { out.on('finish', resolve); out.on('error', reject); });
  pack.pipe(out);
  for (const entry of entries) await new Promise<void>((resolve, reject) => pack.entry({ name: entry.name }, entry.bytes, (error) => (error ? reject(error) : resolve())));
  pack.finalize();
  await done;
}
