/**
 * Removes the temp files no live process owns: directories under `tmp/` whose process is gone
 * (process-owner.ts), and loose `*.part` files of earlier releases once they have not been
 * written to for a while (those processes wrote at least once per `fetch.idleTimeoutSeconds`).
 * A temp file of a process that is still running is never touched, whoever starts next.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isAlive, parseOwnerName } from './process-owner.js';

/** Loose temp files of earlier releases older than this belong to no running download. */
const LEGACY_TEMP_MAX_AGE_MS = 10 * 60 * 1000;

export async function sweepTempFiles(tmpDir: string, ownName: string, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const entry of await readdir(tmpDir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(tmpDir, entry.name);
    if (entry.name === ownName) continue;
    if (entry.isDirectory()) {
      const owner = parseOwnerName(entry.name);
      if (owner && isAlive(owner)) continue;
      await rm(full, { recursive: true, force: true });
      removed += 1;
    } else if (entry.name.endsWith('.part') && (await isOlderThan(full, now - LEGACY_TEMP_MAX_AGE_MS))) {
      await rm(full, { force: true });
      removed += 1;
    }
  }
  return removed;
}

async function isOlderThan(file: string, cutoff: number): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  return info !== undefined && info.mtimeMs < cutoff;
}
