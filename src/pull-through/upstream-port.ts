/**
 * What the pull-through layer needs from an upstream registry. src/upstream/upstream-registry.ts
 * implements it with undici; tests may hand in anything that fits.
 */
import type { Readable } from 'node:stream';

export interface UpstreamManifest {
  digest: string | undefined;
  mediaType: string | undefined;
  size: number | undefined;
  bytes: Buffer | undefined;
}

export interface UpstreamBlob {
  size: number | undefined;
  body: Readable;
  /** Fetched without the mirror's credentials (`withoutCredentials`): the upstream serves it to anyone. */
  anonymous?: boolean;
}

export interface UpstreamPort {
  readonly name: string;
  fetchManifest(repo: string, reference: string, options: { method: 'GET' | 'HEAD'; accept: string; signal?: AbortSignal }): Promise<UpstreamManifest>;
  fetchBlob(repo: string, digest: string, options?: { signal?: AbortSignal }): Promise<UpstreamBlob>;
  /**
   * Starts getting what a fetch from `repo` will need (its token), so that round trip overlaps
   * the coordination before the fetch (the flight, the store check, the upstream slot) instead of
   * following it. Never throws; the fetch itself reports any failure.
   */
  prepareFetch?(repo: string): void;
  /**
   * The same upstream as a client without the mirror's credentials sees it (an anonymous token
   * where it uses tokens). Its blob fetch throws AnonymousAccessRefusedError on 401 or 403.
   */
  readonly withoutCredentials?: UpstreamPort;
  headBlob(repo: string, digest: string, options?: { signal?: AbortSignal }): Promise<{ size: number | undefined }>;
  fetchTags(repo: string, query: string, options?: { signal?: AbortSignal }): Promise<{ body: Buffer; link: string | undefined }>;
  fetchReferrers(repo: string, digest: string, artifactType?: string, options?: { signal?: AbortSignal }): Promise<{ body: Buffer; contentType: string } | null>;
}

/**
 * Drops an upstream body that will not be read to its end. Destroying an undici body emits
 * 'error' (RequestAbortedError) once it is destroyed before its end, and an 'error' without a
 * listener takes the process down (issue 12 item 1), so a listener goes on first.
 */
export function discardUpstreamBody(body: Readable): void {
  body.on('error', ignoreError);
  body.destroy();
}

function ignoreError(): void {}
