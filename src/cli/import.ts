/**
 * `registry-mirror import FILE` (`-` for stdin): loads an OCI image layout archive (from
 * `registry-mirror export`, or skopeo's `oci-archive:`) into the cache named by the config,
 * verifying every blob, and restores the tags named in the archive's ref.name annotations.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { importOciArchive } from '../airgap/import-archive.js';
import { createProgress, formatBytes } from './progress.js';
import { formatTable, openTool } from './tool-context.js';

export interface ImportOptions {
  config?: string;
}

export async function importCommand(file: string, options: ImportOptions): Promise<void> {
  const input: Readable = file === '-' ? process.stdin : createReadStream(file);
  const totalBytes = file === '-' ? 0 : (await stat(file)).size;
  const { mirror } = await openTool(options.config, { offline: true });
  const progress = createProgress();
  try {
    const task = progress.task(file === '-' ? 'stdin' : file, totalBytes);
    input.on('data', (chunk: Buffer) => task.advance(chunk.byteLength));
    const result = await importOciArchive(input, mirror);
    task.finish(result.failures.length > 0 || result.images.some((image) => image.error) ? 'with errors' : 'imported');
    progress.stop();
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    for (const failure of result.failures) process.stderr.write(`error: ${failure}\n`);
    const rows = result.images.map((image) => [image.tag ?? image.name, image.error ? 'FAILED' : 'ok', image.digest.slice(0, 19), image.error ?? '']);
    process.stdout.write(`${formatTable(['IMAGE', 'STATUS', 'DIGEST', 'ERROR'], rows)}\n`);
    process.stdout.write(`${result.blobsStored} blobs stored (${formatBytes(result.bytesStored)}), ${result.blobsAlreadyPresent} already in the cache\n`);
    if (result.failures.length > 0 || result.images.some((image) => image.error)) process.exitCode = 1;
  } finally {
    progress.stop();
    await mirror.close();
  }
}
