/**
 * `registry-mirror warm [IMAGE...] [-f FILE] [--platform os/arch[/variant],...]`: fills the cache
 * with whole images (every platform by default) through the pull-through service, so a mirror
 * can later serve them with the upstream out of reach (README.md, "Air-gapped mirrors").
 */
import { readFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import { parseImageList } from '../airgap/image-reference.js';
import { parsePlatformFilter } from '../airgap/image-walk.js';
import { warmImage, type WarmResult } from '../airgap/warm-image.js';
import { createProgress, formatBytes } from './progress.js';
import { formatTable, openTool, UsageError } from './tool-context.js';

export interface WarmOptions {
  config?: string;
  file?: string;
  platform?: string;
}

const IMAGES_AT_ONCE = 3;

export async function warmCommand(images: string[], options: WarmOptions): Promise<void> {
  const filter = parsePlatformFilter(options.platform);
  const listed = options.file ? parseImageList(await readFile(options.file === '-' ? '/dev/stdin' : options.file, 'utf8')) : [];
  const all = [...images, ...listed];
  if (all.length === 0) throw new UsageError('warm: name at least one image, or a file of images with -f');
  const { mirror } = await openTool(options.config);
  const progress = createProgress();
  const limit = pLimit(IMAGES_AT_ONCE);
  let results: WarmResult[];
  try {
    results = await Promise.all(all.map((image) => limit(async () => {
      const task = progress.task(image);
      const result = await warmImage(mirror, image, filter, task);
      task.finish(result.error ? 'FAILED' : 'done');
      if (result.error) progress.log(`${image}: ${result.error}`);
      return result;
    })));
  } finally {
    progress.stop();
    await mirror.close();
  }
  process.stdout.write(`${warmSummary(results)}\n`);
  if (results.some((result) => result.error)) process.exitCode = 1;
}

export function warmSummary(results: WarmResult[]): string {
  const rows = results.map((result) => [
    result.image,
    result.error ? 'FAILED' : 'ok',
    result.digest?.slice(0, 19) ?? '-',
    result.platforms.length > 0 ? result.platforms.join(',') : '-',
    String(result.blobs),
    formatBytes(result.fetchedBytes),
    formatBytes(result.cachedBytes),
    result.error ?? '',
  ]);
  return formatTable(['IMAGE', 'STATUS', 'DIGEST', 'PLATFORMS', 'BLOBS', 'FETCHED', 'ALREADY CACHED', 'ERROR'], rows);
}
