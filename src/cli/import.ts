/**
 * `registry-mirror import FILE [--retag]` (`-` for stdin): loads an OCI image layout archive (from
 * `registry-mirror export`, or skopeo's `oci-archive:`) into the cache named by the config,
 * verifying every blob, and restores the tags named in the archive's ref.name annotations.
 * A tag the cache already has for other content is re-pointed only with `--retag`.
 *
 * Whatever is wrong with the archive or the file ends in one line on stderr and exit status 1
 * (CommandFailedError), never a stack trace.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { importOciArchive, type ImportResult } from '../airgap/import-archive.js';
import { createProgress, formatBytes } from './progress.js';
import { formatTable, openTool } from './tool-context.js';
import { CommandFailedError } from './usage-error.js';

export interface ImportOptions {
  config?: string;
  retag?: boolean;
}

export async function importCommand(file: string, options: ImportOptions): Promise<void> {
  const totalBytes = file === '-' ? 0 : await archiveSize(file);
  const input: Readable = file === '-' ? process.stdin : createReadStream(file);
  const { mirror } = await openTool(options.config, { offline: true });
  const progress = createProgress();
  try {
    const task = progress.task(file === '-' ? 'stdin' : file, totalBytes);
    const result = await importOciArchive(counted(input, (bytes) => task.advance(bytes)), mirror, { retag: options.retag === true }).catch((error: unknown) => {
      throw new CommandFailedError(`import: ${file === '-' ? 'stdin' : file}: ${(error as Error).message}`);
    });
    const failed = result.failures.length > 0 || result.failedCount > 0;
    task.finish(failed ? 'with errors' : 'imported');
    progress.stop();
    report(result);
    if (failed) process.exitCode = 1;
  } finally {
    progress.stop();
    await mirror.close();
  }
}

async function archiveSize(file: string): Promise<number> {
  const found = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new CommandFailedError(`import: cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (!found.isFile()) throw new CommandFailedError(`import: ${file} is not a file`);
  return found.size;
}

function report(result: ImportResult): void {
  for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
  for (const failure of result.failures) process.stderr.write(`error: ${failure}\n`);
  const rows = result.images.map((image) => [image.tag ?? image.name, image.error ? 'FAILED' : 'ok', image.digest.slice(0, 19), image.error ?? '']);
  process.stdout.write(`${formatTable(['IMAGE', 'STATUS', 'DIGEST', 'ERROR'], rows)}\n`);
  const unlisted = result.imageCount - result.images.length;
  if (unlisted > 0) process.stdout.write(`... and ${unlisted} more images (${result.failedCount} failed in all)\n`);
  process.stdout.write(`${result.tagsRestored} tags restored; ${result.blobsStored} blobs stored (${formatBytes(result.bytesStored)}), ${result.blobsAlreadyPresent} already in the cache\n`);
}

/**
 * The archive as a stream that reports the bytes read through it. A 'data' listener on the input
 * itself would set it flowing at once, before the importer pipes it anywhere (it creates its
 * spool directory first), and the chunks emitted meanwhile were lost: a small archive read as
 * empty, a large one without its first 64 KiB. A Transform passes nothing on until it is read.
 */
function counted(input: Readable, onBytes: (bytes: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.byteLength);
      done(null, chunk);
    },
  });
  input.on('error', (error) => counter.destroy(error));
  return input.pipe(counter);
}
