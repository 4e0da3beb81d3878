/**
 * What a 200 from the upstream must look like before anything downstream sees it. The mirror
 * serves manifests, tag lists and referrers on its own origin and caches them, so an answer that
 * is not what the distribution-spec says is the upstream's fault: UpstreamBadResponseError (502),
 * never cached, never passed through. Messages name the call, never a header's raw bytes.
 */
import { parseDigest } from '../domain/digest.js';
import { UpstreamBadResponseError } from '../domain/errors.js';
import { manifestMediaType, mediaTypeEssence, MANIFEST_MEDIA_TYPES, OCI_INDEX } from '../domain/media-types.js';
import { discardBody, type HopResponse, type UpstreamResponse } from './http-dispatcher.js';
import { contentLength } from './read-body.js';
import { errorForStatus, headerValue } from './upstream-failures.js';

/** The final response of a call, and whether it came from another origin (a redirect target such as a CDN). */
export interface UpstreamAnswer<Response extends HopResponse = UpstreamResponse> {
  response: Response;
  crossOrigin: boolean;
}

/** Only the registry itself says what does not exist; a CDN's 404 after its redirect is its fault. */
export function isNotFound(answer: UpstreamAnswer<HopResponse>): boolean {
  return answer.response.statusCode === 404 && !answer.crossOrigin;
}

/**
 * Throws for anything but a 200, the body discarded. The registry's own 401/403 keep their
 * meaning (credentials, access); from a redirect target every 4xx but 429 is the upstream's
 * fault, a 502: clients do not fall back on a 4xx.
 */
export function expectOk(answer: UpstreamAnswer<HopResponse>, what: string): void {
  const { response, crossOrigin } = answer;
  const status = response.statusCode;
  if (status === 200) return;
  discardBody(response);
  if (crossOrigin && status >= 400 && status < 500 && status !== 429) {
    throw new UpstreamBadResponseError(`${what}: the redirect target answered ${status}`);
  }
  throw errorForStatus(status, response.headers, what);
}

/** Discards the body and hands back `value`, for answers whose status says it all. */
export function discarded<T>(answer: UpstreamAnswer<HopResponse>, value: T): T {
  discardBody(answer.response);
  return value;
}

export interface ManifestResult {
  /** Docker-Content-Digest header, checked to be a digest. */
  digest: string | undefined;
  /** GET: the verified manifest media type. HEAD: Content-Type when it is a manifest type. */
  mediaType: string | undefined;
  /** Content-Length (for a GET without one, the length read). */
  size: number | undefined;
  /** GET only. */
  bytes: Buffer | undefined;
}

/** A manifest answer; `bytes` is the body of a GET, undefined for a HEAD. */
export function manifestResult(response: UpstreamResponse, bytes: Buffer | undefined, what: string): ManifestResult {
  const digest = digestHeader(response, what);
  const contentType = headerValue(response.headers, 'content-type');
  const size = contentLength(response) ?? bytes?.length;
  if (bytes === undefined) return { digest, mediaType: knownManifestType(contentType), size, bytes };
  const verdict = manifestMediaType(bytes, contentType);
  if ('problem' in verdict) throw new UpstreamBadResponseError(`${what}: the upstream's manifest ${verdict.problem}`);
  return { digest, mediaType: verdict.mediaType, size, bytes };
}

/** A referrers answer must be an OCI image index (distribution-spec "Listing Referrers"). */
export function referrersResult(response: UpstreamResponse, body: Buffer, what: string): { body: Buffer; contentType: string } {
  const contentType = headerValue(response.headers, 'content-type');
  const sent = contentType === undefined ? undefined : mediaTypeEssence(contentType);
  const parsed = parseJson(body) as { manifests?: unknown } | undefined;
  if ((sent !== undefined && sent !== OCI_INDEX && sent !== 'application/json') || !Array.isArray(parsed?.manifests)) {
    throw new UpstreamBadResponseError(`${what}: the upstream's referrers answer is not an OCI image index`);
  }
  return { body, contentType: OCI_INDEX };
}

/** A tag list is `{"name": ..., "tags": [...]}` (tags may be null for an empty repository). */
export function checkTagList(body: Buffer, what: string): void {
  const parsed = parseJson(body) as { tags?: unknown } | undefined;
  const tags = parsed?.tags;
  if (parsed === undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || !(tags === null || tags === undefined || Array.isArray(tags))) {
    throw new UpstreamBadResponseError(`${what}: the upstream's tag list is not a JSON tag list`);
  }
}

function digestHeader(response: UpstreamResponse, what: string): string | undefined {
  const value = headerValue(response.headers, 'docker-content-digest');
  if (value === undefined) return undefined;
  try {
    return parseDigest(value).value;
  } catch {
    throw new UpstreamBadResponseError(`${what}: the upstream sent a malformed Docker-Content-Digest`);
  }
}

function knownManifestType(contentType: string | undefined): string | undefined {
  const essence = contentType === undefined ? undefined : mediaTypeEssence(contentType);
  return essence !== undefined && MANIFEST_MEDIA_TYPES.includes(essence) ? essence : undefined;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
