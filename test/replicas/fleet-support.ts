/**
 * What the replica tests share besides the fleet itself: GETs that note when their first byte
 * came, who holds a lease (read straight from Redis), and the upstream's count of blob GETs.
 */
import { Redis } from 'ioredis';
import { request } from 'undici';
import type { FakeRegistry, RequestRecord } from '../helpers/fake-registry.js';

export interface TimedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  error?: Error;
  /** performance.now() at the first body byte; undefined when none came. */
  firstByteAt?: number;
}

/** A GET whose whole body is kept, with the time of its first byte and any error cutting it. */
export async function timedGet(url: string, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<TimedResponse> {
  let response;
  try {
    response = await request(url, { headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  } catch (error) {
    return { status: 0, headers: {}, body: Buffer.alloc(0), error: error as Error };
  }
  const chunks: Buffer[] = [];
  let firstByteAt: number | undefined;
  let error: Error | undefined;
  try {
    for await (const chunk of response.body) {
      firstByteAt ??= performance.now();
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
  } catch (caught) {
    error = caught as Error;
  }
  return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks), error, firstByteAt };
}

/** True when the response is a complete, clean 200 of exactly `bytes`. */
export function deliveredExactly(response: TimedResponse, bytes: Buffer): boolean {
  return response.status === 200 && response.error === undefined && response.body.equals(bytes);
}

/** GETs of a blob that reached the upstream (registry or CDN), 401 challenges aside. */
export function upstreamBlobGets(fake: FakeRegistry, digest: string): RequestRecord[] {
  return fake.requests.filter((record) => record.method === 'GET' && record.path.includes(digest) && record.status !== 401);
}

/** Upstream requests of any kind since the start (or the last resetCounts). */
export function upstreamRequests(fake: FakeRegistry): RequestRecord[] {
  return fake.requests.filter((record) => record.path !== '/v2/' && record.path !== '/token');
}

/** Polls Redis for the holder of lease `key` (e.g. "blob sha256:..."), returning its owner string. */
export async function leaseOwner(redisUrl: string, key: string, deadlineMs = 15_000): Promise<string> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const value = await redis.get(`registry-mirror:lease:${key}`);
      if (value) return value.slice(value.indexOf(' ') + 1);
      if (Date.now() > until) throw new Error(`no lease ${key} within ${deadlineMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    redis.disconnect();
  }
}
