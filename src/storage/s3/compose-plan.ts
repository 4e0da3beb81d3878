/**
 * How the chunks of a resumable writer become the parts of one multipart upload. S3 wants every
 * part but the last to be at least 5 MiB; chunks are whatever clients sent per PATCH (often far
 * less). A chunk of at least the minimum is copied server-side (UploadPartCopy); smaller ones
 * are gathered, with the chunks after them, into a part the store reads and uploads itself.
 * A gathered part stays under minPart + the largest chunk, so memory stays bounded.
 */
export interface StoredChunk {
  key: string;
  offset: number;
  size: number;
  etag: string;
}

export type PlannedPart =
  | { kind: 'copy'; chunk: StoredChunk }
  | { kind: 'gather'; chunks: StoredChunk[]; size: number };

export function planParts(chunks: StoredChunk[], minPart: number): PlannedPart[] {
  const parts: PlannedPart[] = [];
  let gathered: StoredChunk[] = [];
  let gatheredSize = 0;
  for (const chunk of chunks) {
    if (gathered.length === 0 && chunk.size >= minPart) {
      parts.push({ kind: 'copy', chunk });
      continue;
    }
    gathered.push(chunk);
    gatheredSize += chunk.size;
    if (gatheredSize >= minPart) {
      parts.push({ kind: 'gather', chunks: gathered, size: gatheredSize });
      gathered = [];
      gatheredSize = 0;
    }
  }
  // The last part may be small: S3 exempts it from the minimum.
  if (gathered.length > 0) parts.push({ kind: 'gather', chunks: gathered, size: gatheredSize });
  return parts;
}

/** Chunks in offset order, checked to cover 0..size without gaps or overlaps. */
export function orderChunks(chunks: StoredChunk[]): { chunks: StoredChunk[]; size: number } {
  const ordered = [...chunks].sort((a, b) => a.offset - b.offset);
  let size = 0;
  for (const chunk of ordered) {
    if (chunk.offset !== size) throw new Error(`chunk ${chunk.key} starts at ${chunk.offset}, expected ${size}`);
    size += chunk.size;
  }
  return { chunks: ordered, size };
}
