/**
 * The one definition of "a pull" and "a hit", shared by the Prometheus metrics, the status page
 * (/api/status) and `registry-mirror stats` (which used to disagree):
 *
 *   - a pull is a manifest request by tag (GET or HEAD) answered 200: what a client does once
 *     per image pull (docker GETs the tag; containerd HEADs it, then GETs by digest);
 *   - a hit is a manifest (GET or HEAD) or blob GET answered without the upstream's bytes: from
 *     the cache, revalidated by a HEAD, or served stale; a miss needed the upstream's bytes
 *     (fetched, or a running download joined).
 */
import type { BlobOrigin, ManifestOrigin } from '../pull-through/registry-service.js';

export type AnswerKind = 'manifest' | 'blob';

export interface AnsweredRequest {
  /** The API endpoint (http/api-path.ts): 'manifests', 'blobs', ... */
  endpoint: string;
  method: string;
  status: number;
  /** The tag or digest in the path. */
  reference: string;
  /** Where the answer's bytes came from, when the registry service answered. */
  origin: string | undefined;
}

export interface Accounted {
  kind: AnswerKind;
  origin: BlobOrigin | ManifestOrigin;
  pull: boolean;
  hit: boolean;
}

const HIT_ORIGINS: ReadonlySet<string> = new Set(['cache', 'revalidated', 'stale']);
const KINDS: Record<string, AnswerKind> = { manifests: 'manifest', blobs: 'blob' };

/** How a request counts; undefined for anything that is neither a manifest nor a blob answer. */
export function accountAnswer(request: AnsweredRequest): Accounted | undefined {
  const kind = KINDS[request.endpoint];
  if (!kind || request.origin === undefined) return undefined;
  const pull = kind === 'manifest' && request.status === 200 && !request.reference.includes(':');
  return { kind, origin: request.origin as Accounted['origin'], pull, hit: isHit(request.origin) };
}

export function isHit(origin: string): boolean {
  return HIT_ORIGINS.has(origin);
}

/** Hits over all answered requests; null before any. */
export function hitRatio(counts: { hits: number; misses: number }): number | null {
  const total = counts.hits + counts.misses;
  return total === 0 ? null : counts.hits / total;
}
