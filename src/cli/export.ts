/**
 * `registry-mirror export --out FILE [IMAGE...|--all]`: writes cached images as an OCI image
 * layout tar (`-` for stdout) that `registry-mirror import` and other OCI tools read. Reads the
 * cache only; the upstreams are never contacted.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { planExport } from '../airgap/export-plan.js';
import { writeOciArchive } from '../airgap/oci-archive-writer.js';
import { createProgress, formatBytes } from './progress.js';
import { formatTable, openTool, UsageError } from './tool-context.js';

export interface ExportOptions {
  config?: string;
  out?: string;
  all?: boolean;
}

export async function exportCommand(images: string[], options: ExportOptions): Promise<void> {
  if (!options.out) throw new UsageError('export: --out FILE is required (- for stdout)');
  if (options.all === (images.length > 0)) throw new UsageError('export: name images or give --all (not both)');
  const { mirror } = await openTool(options.config, { offline: true });
  const progress = createProgress();
  try {
    const plan = await planExport(mirror, options.all ? 'all' : images);
    for (const warning of plan.warnings) progress.log(`warning: ${warning}`);
    for (const failure of plan.failures) progress.log(`${failure.image}: ${failure.error}`);
    if (plan.images.length === 0) throw new UsageError('export: no image to write');
    const out = openOutput(options.out);
    try {
      await writeOciArchive(plan.images, mirror.content, out, {
        image(refName, total) {
          const task = progress.task(refName, total);
          return { advance: (bytes) => task.advance(bytes), finish: () => task.finish('written') };
        },
      });
    } catch (error) {
      if (options.out !== '-') await rm(options.out, { force: true });
      throw error;
    }
    progress.stop();
    const rows = plan.images.map((image) => [image.refName, 'ok', image.top.digest.slice(0, 19), String(image.contents.manifests.length), String(image.contents.blobs.length),
      formatBytes(image.contents.blobs.reduce((sum, blob) => sum + blob.size, 0))]);
    rows.push(...plan.failures.map((failure) => [failure.image, 'FAILED', '-', '-', '-', failure.error]));
    process.stderr.write(`${formatTable(['IMAGE', 'STATUS', 'DIGEST', 'MANIFESTS', 'BLOBS', 'SIZE'], rows)}\n`);
    if (plan.failures.length > 0) process.exitCode = 1;
  } finally {
    progress.stop();
    await mirror.close();
  }
}

function openOutput(out: string): Writable {
  return out === '-' ? process.stdout : createWriteStream(out);
}
