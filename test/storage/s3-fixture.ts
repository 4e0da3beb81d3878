/**
 * S3 content stores on the tests' Ceph RADOS Gateway, each test in its own key prefix, and a
 * plain S3 client to look behind the store's back (what objects and multipart uploads exist).
 */
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Digest } from '../../src/domain/digest.js';
import type { BlobBody, ContentStore, ContentWriter } from '../../src/storage/content-store.js';
import { S3ContentStore, type S3ContentStoreOptions } from '../../src/storage/s3/s3-content-store.js';
import type { S3StorageConfig } from '../../src/storage/s3/s3-config.js';
import type { S3Target } from '../helpers/ceph-s3.js';

export const MIB = 2 ** 20;

export class S3Fixture {
  readonly #stores: S3ContentStore[] = [];
  readonly inspector: S3Client;

  constructor(readonly target: S3Target, readonly prefix: string) {
    this.inspector = new S3Client({ endpoint: target.endpoint, region: target.region, forcePathStyle: true, credentials: this.credentials });
  }

  get credentials() {
    return { accessKeyId: this.target.accessKeyId, secretAccessKey: this.target.secretAccessKey };
  }

  /** A store on the fixture's prefix (another one is "another replica" on the same bucket). */
  store(config: Partial<S3StorageConfig> = {}, options: S3ContentStoreOptions = {}): S3ContentStore {
    const store = new S3ContentStore(
      { endpoint: this.target.endpoint, bucket: this.target.bucket, region: this.target.region, forcePathStyle: true, prefix: this.prefix, ...config },
      { credentials: this.credentials, ...options },
    );
    this.#stores.push(store);
    return store;
  }

  /** Every key under the prefix, sorted, without the prefix. */
  async keys(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.inspector.send(new ListObjectsV2Command({ Bucket: this.target.bucket, Prefix: this.prefix, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((object) => object.Key!.slice(this.prefix.length)));
      token = page.NextContinuationToken;
    } while (token);
    return keys.sort();
  }

  /** Keys of the multipart uploads in progress under the prefix. */
  async multipartUploads(): Promise<string[]> {
    const page = await this.inspector.send(new ListMultipartUploadsCommand({ Bucket: this.target.bucket, Prefix: this.prefix }));
    return (page.Uploads ?? []).map((upload) => upload.Key!.slice(this.prefix.length)).sort();
  }

  async close(): Promise<void> {
    await Promise.all(this.#stores.map((store) => store.close()));
    this.inspector.destroy();
  }
}

export function blobKey(digest: Digest): string {
  return `blobs/${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`;
}

export async function writeAll(writer: ContentWriter, bytes: Buffer, pieceSize = 256 * 1024): Promise<ContentWriter> {
  for (let offset = 0; offset < bytes.length; offset += pieceSize) await writer.write(bytes.subarray(offset, offset + pieceSize));
  return writer;
}

export async function streamBytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The bytes of a stream body (a test failure for any other kind). */
export async function bodyBytes(store: ContentStore, digest: Digest, range?: { start: number; end: number }): Promise<Buffer | undefined> {
  const body: BlobBody | undefined = await store.open(digest, range ? { range } : {});
  if (!body) return undefined;
  if (body.kind !== 'stream') throw new Error(`expected a stream body, got ${body.kind}`);
  return streamBytes(body.stream);
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
