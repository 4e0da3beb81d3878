/**
 * Small HTTP helpers for tests: one undici request, whole body as a Buffer, redirects NOT
 * followed (tests want to see the 307), plus digests and a polling wait with a deadline.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  headers?: Record<string, string>;
  /** Give up when no head arrives in time (undici headersTimeout); default 10 s. */
  headersTimeoutMs?: number;
  /** Give up when the body stalls this long (undici bodyTimeout); default 10 s. */
  bodyTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export async function send(url: string, options: RequestOptions = {}): Promise<TestResponse> {
  const response = await request(url, {
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    headersTimeout: options.headersTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    bodyTimeout: options.bodyTimeoutMs ?? DEFAULT_TIMEOUT_MS,
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers as IncomingHttpHeaders, body };
}

export function get(url: string, headers: Record<string, string> = {}, options: Omit<RequestOptions, 'method' | 'headers'> = {}): Promise<TestResponse> {
  return send(url, { ...options, method: 'GET', headers });
}

export function head(url: string, headers: Record<string, string> = {}, options: Omit<RequestOptions, 'method' | 'headers'> = {}): Promise<TestResponse> {
  return send(url, { ...options, method: 'HEAD', headers });
}

/** GET that also reports the chunks as they arrived, and the bytes received before any error. */
export async function getChunks(url: string, headers: Record<string, string> = {}): Promise<{ status: number; chunks: Buffer[]; error?: Error }> {
  const chunks: Buffer[] = [];
  let response;
  try {
    response = await request(url, { headers, headersTimeout: DEFAULT_TIMEOUT_MS, bodyTimeout: DEFAULT_TIMEOUT_MS });
  } catch (error) {
    // The server may cut the connection before sending headers (a fill that failed at once).
    return { status: 0, chunks, error: error as Error };
  }
  try {
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Uint8Array));
    return { status: response.statusCode, chunks };
  } catch (error) {
    return { status: response.statusCode, chunks, error: error as Error };
  }
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Polls `predicate` until it holds; throws after `timeoutMs` with `what` in the message. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(`waitFor: ${what} did not hold within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
