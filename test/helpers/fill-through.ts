/**
 * The mirror fills a blob through a repository with its own upstream credentials, as `warm`
 * does, and the caller gets the bytes: through the registry service, as the HTTP routes call it.
 * It returns once the blob is published and linked, as warm's close waits for that.
 */
import type { Readable } from 'node:stream';
import type { Mirror } from '../../src/compose.js';
import { parseDigest } from '../../src/domain/digest.js';
import { proxiedTarget } from '../../src/domain/target.js';
import { followGrowingFile } from '../../src/storage/growing-file.js';
import { bodyStream } from '../../src/storage/read-content.js';

export async function fillThrough(mirror: Mirror, repository: string, digest: string, upstream = 'docker.io'): Promise<Buffer> {
  const answer = await mirror.registry.blob(proxiedTarget(upstream, repository), parseDigest(digest));
  const { body } = answer;
  if (body.kind === 'redirect') throw new Error('a redirect body cannot be read here');
  const stream: Readable = body.kind === 'growing' ? followGrowingFile(body.file, 0, answer.size === undefined ? Infinity : answer.size - 1) : bodyStream(body);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
  } finally {
    answer.release();
  }
  // The last byte comes once the digest is checked; the blob is published and linked just after.
  await mirror.downloads.finishCommits();
  return Buffer.concat(chunks);
}
