/**
 * The S3 client the content store talks through: timeouts that turn a dead or hung S3 into a
 * prompt error, the checksum behaviour S3-compatible servers accept, and an explicit answer to
 * AWS_CA_BUNDLE.
 *
 * AWS_CA_BUNDLE: the AWS CLI and the Python and Go SDKs read it ("ca_bundle" in the AWS SDKs and
 * Tools reference, General configuration settings); the JavaScript SDK v3 does not (no package of
 * @aws-sdk or @smithy mentions it; its guide, "Register certificate bundles in Node.js", passes
 * an https.Agent with `ca` instead). So it is applied here, as the other SDKs do: for an https
 * endpoint (or AWS itself) the bundle replaces the default trust store; for a plain http endpoint
 * there is no certificate to check and the variable is not even read, so a machine-wide bundle
 * cannot break it (distribution 2.8 panics there with LoadCustomCABundleError).
 */
import { readFileSync } from 'node:fs';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { ResolvedS3StorageConfig } from './s3-config.js';
import { S3ConfigError } from './s3-config.js';

export interface S3ClientTuning {
  /** TCP (and TLS) connect; default 3 s. */
  connectTimeoutMs?: number;
  /** From sending a request to its response head; default 15 s. */
  firstByteTimeoutMs?: number;
  /** A socket with no traffic either way, body transfers included; default 30 s. */
  idleTimeoutMs?: number;
  /** Tries per request (the SDK retries refused connections, timeouts, 5xx and throttling); default 2. */
  maxAttempts?: number;
  /** Instead of the credential chain (tests). */
  credentials?: S3ClientConfig['credentials'];
  /** Where AWS_CA_BUNDLE is read from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

const MAX_SOCKETS = 64;

export function createS3Client(config: ResolvedS3StorageConfig, tuning: S3ClientTuning = {}): S3Client {
  const ca = trustedCertificates(config.endpoint, tuning.env ?? process.env);
  return new S3Client({
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(tuning.credentials ? { credentials: tuning.credentials } : {}),
    maxAttempts: tuning.maxAttempts ?? 2,
    // Newer SDKs add CRC32 checksums (and aws-chunked trailers) to every upload by default;
    // S3-compatible servers such as Ceph RGW 16 reject or ignore them. Content is verified by
    // its sha256 digest at commit, so checksums are sent only where an operation requires one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: tuning.connectTimeoutMs ?? 3_000,
      // Cleared when the response head arrives (@smithy/node-http-handler): a time-to-first-byte.
      requestTimeout: tuning.firstByteTimeoutMs ?? 15_000,
      throwOnRequestTimeout: true,
      socketTimeout: tuning.idleTimeoutMs ?? 30_000,
      httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS, ...(ca ? { ca } : {}) },
    },
  });
}

/** The CA certificates to trust instead of Node's defaults, or undefined for the defaults. */
export function trustedCertificates(endpoint: string | undefined, env: NodeJS.ProcessEnv): Buffer | undefined {
  const bundle = env.AWS_CA_BUNDLE;
  if (!bundle || (endpoint && new URL(endpoint).protocol === 'http:')) return undefined;
  let pem: Buffer;
  try {
    pem = readFileSync(bundle);
  } catch (error) {
    throw new S3ConfigError(`AWS_CA_BUNDLE: cannot read ${JSON.stringify(bundle)} (${(error as Error).message}); unset it or point it at a PEM file of CA certificates`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new S3ConfigError(`AWS_CA_BUNDLE: ${JSON.stringify(bundle)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return pem;
}
