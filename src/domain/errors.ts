/**
 * Every failure the mirror reports is one of these classes. Each has a stable `code`, taken from
 * the OCI distribution-spec's error codes where one fits (spec section "Error Codes"), so that
 * src/http/oci-error-response.ts can map it to a status and an OCI error body in one place.
 */
export type ErrorCode =
  | 'BLOB_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'SIZE_INVALID'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'TAG_INVALID'
  | 'RANGE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE'
  | 'UPSTREAM_ERROR'
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN';

export abstract class MirrorError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, readonly detail?: unknown) {
    super(message);
    this.name = new.target.name;
  }
}

export class NameInvalidError extends MirrorError { readonly code = 'NAME_INVALID'; }
export class TagInvalidError extends MirrorError { readonly code = 'TAG_INVALID'; }
export class DigestInvalidError extends MirrorError { readonly code = 'DIGEST_INVALID'; }
/** Content whose length is not the one announced (distribution-spec "Error Codes": SIZE_INVALID). */
export class SizeInvalidError extends MirrorError { readonly code = 'SIZE_INVALID'; }
export class ManifestInvalidError extends MirrorError { readonly code = 'MANIFEST_INVALID'; }
export class ManifestUnknownError extends MirrorError { readonly code = 'MANIFEST_UNKNOWN'; }
export class BlobUnknownError extends MirrorError { readonly code = 'BLOB_UNKNOWN'; }
export class NameUnknownError extends MirrorError { readonly code = 'NAME_UNKNOWN'; }
/**
 * The upstream refused a fetch the mirror made without its credentials, for a client that did
 * not authenticate (pull-through/guarded-registry.ts): to that client the repository does not
 * exist. A client with credentials that joined that fetch makes its own (proxy-blobs.ts).
 */
export class AnonymousAccessRefusedError extends NameUnknownError {}
/** A method an endpoint does not offer (405); `allow` lists the ones it does (RFC 9110 section 15.5.6). */
export class UnsupportedError extends MirrorError {
  readonly code = 'UNSUPPORTED';
  constructor(message: string, readonly allow: readonly string[] = []) {
    super(message);
  }
}
export class BadRequestError extends MirrorError { readonly code = 'BAD_REQUEST'; }
/**
 * A request no route could be given: Node's parser refused it (400; 431 for headers past
 * `maxHeaderSize`, RFC 6585 section 5; 408 for one that took too long), or it names no URL
 * (no Host, the asterisk form, a backslash in the path). http/http-server.ts answers it.
 */
export class MalformedRequestError extends BadRequestError {
  constructor(message: string, readonly status: 400 | 408 | 417 | 431 = 400) {
    super(message);
  }
}
/** An upload session that does not exist, or no longer: finished, cancelled or expired (distribution-spec "Error Codes": BLOB_UPLOAD_UNKNOWN). */
export class BlobUploadUnknownError extends MirrorError { readonly code = 'BLOB_UPLOAD_UNKNOWN'; }
/** An upload that cannot go on as asked: a malformed Content-Range, a body cut short. */
export class BlobUploadInvalidError extends MirrorError { readonly code = 'BLOB_UPLOAD_INVALID'; }
/**
 * A chunk that does not start where the upload stands (distribution-spec "Pushing a blob in
 * chunks": 416). `received` bytes are held; the answer's Range says so, so the client can resume.
 */
export class UploadOutOfOrderError extends BlobUploadInvalidError {
  constructor(message: string, readonly received: number) {
    super(message);
  }
}
/**
 * A pushed manifest references content the repository does not have (distribution-spec
 * "Push": one MANIFEST_BLOB_UNKNOWN error per missing digest).
 */
export class ManifestBlobUnknownError extends MirrorError {
  readonly code = 'MANIFEST_BLOB_UNKNOWN';
  constructor(readonly digests: readonly string[]) {
    super(`manifest references ${digests.length === 1 ? 'a blob' : `${digests.length} blobs or manifests`} this repository does not have: ${digests.slice(0, 5).join(', ')}${digests.length > 5 ? ', ...' : ''}`);
  }
}
/** A path under /v2/ that names no API endpoint. */
export class RouteUnknownError extends MirrorError { readonly code = 'NOT_FOUND'; }

/** A Range header that cannot be satisfied by a blob of `size` bytes (RFC 9110 section 15.5.17). */
export class RangeNotSatisfiableError extends MirrorError {
  readonly code = 'RANGE_INVALID';
  constructor(readonly size: number) {
    super(`requested range is not satisfiable for a blob of ${size} bytes`);
  }
}

/** The upstream refused our credentials (or we have none for a private repository). */
export class UnauthorizedError extends MirrorError { readonly code = 'UNAUTHORIZED'; }
export class DeniedError extends MirrorError { readonly code = 'DENIED'; }
/**
 * The upstream names a token realm the config does not trust: a misconfiguration, whose message
 * says which key to change. Unlike other refusals it is not "this client may not read this".
 */
export class UntrustedRealmError extends UnauthorizedError {}

/**
 * The client must authenticate to this mirror: answered 401 with `challenge` as
 * WWW-Authenticate (RFC 9110 section 11.6.1), so docker, containerd and skopeo send credentials.
 */
export class AuthenticationRequiredError extends MirrorError {
  readonly code = 'UNAUTHORIZED';
  constructor(message: string, readonly challenge: string) {
    super(message);
  }
}

/** The upstream answered 429; `retryAfterSeconds` comes from its Retry-After header. */
export class TooManyRequestsError extends MirrorError {
  readonly code = 'TOOMANYREQUESTS';
  constructor(message: string, readonly retryAfterSeconds?: number) {
    super(message);
  }
}

/**
 * This client (address or user name) failed to authenticate too often: answered 429 with
 * Retry-After (RFC 6585 section 4) without checking the password. Not an upstream outage.
 */
export class ClientRateLimitedError extends MirrorError {
  readonly code = 'TOOMANYREQUESTS';
  constructor(message: string, readonly retryAfterSeconds: number) {
    super(message);
  }
}

/**
 * The mirror itself is out of capacity for this kind of work (a bounded queue is full): 503 with
 * Retry-After (RFC 9110 section 15.6.4), since no one client is at fault.
 */
export class ServerBusyError extends MirrorError {
  readonly code = 'UNAVAILABLE';
  constructor(message: string, readonly retryAfterSeconds: number) {
    super(message);
  }
}

/**
 * The client closed its connection while its answer was being prepared (a blob fetch queued or
 * starting): it stops waiting, and nothing is sent. Shows as a 400 in the metrics, the client's
 * doing; no client ever reads it.
 */
export class ClientGoneError extends MirrorError { readonly code = 'BAD_REQUEST'; }

/**
 * A queued upstream fetch was dropped before it started, because every client that wanted it had
 * left (issue 12 item 8). Only a client arriving in that very instant can see it: 503, try again.
 */
export class FetchDroppedError extends MirrorError { readonly code = 'UNAVAILABLE'; }

/** The upstream could not be reached, timed out, or answered 5xx. */
export class UpstreamUnavailableError extends MirrorError { readonly code = 'UNAVAILABLE'; }

/** Work shared by several requests (coordination/flights.ts) ran past its deadline. */
export class DeadlineExceededError extends MirrorError { readonly code = 'UNAVAILABLE'; }

/** The upstream answered something we cannot use: wrong digest, wrong length, broken body. */
export class UpstreamBadResponseError extends MirrorError { readonly code = 'UPSTREAM_ERROR'; }

/** True for failures that say the upstream is down or overloaded, not that content is missing. */
export function isUpstreamOutage(error: unknown): boolean {
  return error instanceof UpstreamUnavailableError || error instanceof TooManyRequestsError || error instanceof UpstreamBadResponseError;
}
