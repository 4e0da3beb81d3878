/**
 * What an S3 failure means to the mirror. Absent content is an answer (undefined), not an error;
 * everything else S3 does wrong makes the store unavailable: UpstreamUnavailableError (code
 * UNAVAILABLE, answered 503), so clients retry and the mirror keeps serving what it holds
 * elsewhere (issue 15: "S3 down -> cold blobs 503"). Messages say what to change when the cause
 * is ours (credentials, bucket, CA bundle) rather than S3's.
 */
import { MirrorError, UpstreamUnavailableError } from '../../domain/errors.js';

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export function httpStatusOf(error: unknown): number | undefined {
  return (error as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/** S3 said there is no such object (HEAD answers a bare 404 named NotFound). */
export function isNotFound(error: unknown): boolean {
  const { name } = (error ?? {}) as SdkErrorShape;
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatusOf(error) === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload');
}

export function isNoSuchUpload(error: unknown): boolean {
  return (error as SdkErrorShape | undefined)?.name === 'NoSuchUpload' || httpStatusOf(error) === 404;
}

/** An If-Match / x-amz-copy-source-if-match that did not hold. */
export function isPreconditionFailed(error: unknown): boolean {
  return (error as SdkErrorShape | undefined)?.name === 'PreconditionFailed' || httpStatusOf(error) === 412;
}

export function isInvalidRange(error: unknown): boolean {
  return (error as SdkErrorShape | undefined)?.name === 'InvalidRange' || httpStatusOf(error) === 416;
}

const HINTS: Record<string, string> = {
  NoSuchBucket: 'check storage.s3.bucket (the bucket must exist)',
  AccessDenied: 'check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE...) and the bucket policy',
  InvalidAccessKeyId: 'check AWS_ACCESS_KEY_ID (or the credential chain)',
  SignatureDoesNotMatch: 'check AWS_SECRET_ACCESS_KEY and storage.s3.region',
  AuthorizationHeaderMalformed: 'check storage.s3.region',
  PermanentRedirect: 'check storage.s3.region and storage.s3.endpoint',
};

const TLS_CODES = /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** Any failure of an S3 call as a MirrorError; `what` names the operation ("stat sha256:ab..."). */
export function toStoreError(error: unknown, what: string): MirrorError {
  if (error instanceof MirrorError) return error;
  const { name = 'Error', code, message = String(error) } = (error ?? {}) as SdkErrorShape;
  const status = httpStatusOf(error);
  const reason = status ? `${name} (HTTP ${status})` : `${code ?? name}: ${message}`;
  const hint = HINTS[name] ?? (code && TLS_CODES.test(code) ? 'the S3 endpoint certificate is not trusted: set AWS_CA_BUNDLE to its CA certificate' : undefined);
  return new UpstreamUnavailableError(`S3 storage unavailable: ${what}: ${reason}${hint ? `; ${hint}` : ''}`, error);
}
