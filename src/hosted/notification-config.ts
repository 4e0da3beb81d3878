/**
 * `notifications.endpoints`: where push and delete events are sent (distribution's
 * `notifications.endpoints`, configuration.md "notifications", with seconds instead of Go
 * durations and an exponential back-off instead of its threshold/backoff circuit breaker).
 *
 *   { "name": "ci", "url": "https://hooks.example.com/registry", "headers": { "Authorization": "Bearer ..." },
 *     "timeoutSeconds": 5, "backoffSeconds": 1, "maxBackoffSeconds": 60, "queueSize": 1000, "maxAttempts": 0 }
 *
 * Only `url` is required. Errors name the key and the value received.
 */
import { ConfigError } from '../config/config-error.js';

export interface NotificationEndpoint {
  /** For logs and metrics; defaults to the URL's host. */
  readonly name: string;
  readonly url: string;
  /** Sent with every request (e.g. Authorization); values of a list are joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** Per request: connect, headers and body. */
  readonly timeoutMs: number;
  /** Wait after the first failure; doubled after each further one, up to maxBackoffMs. */
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** Events waiting (or in flight) for this endpoint; beyond it new events are dropped with a warning. */
  readonly queueSize: number;
  /** Attempts per envelope before it is dropped with a warning; 0: until delivered (distribution's behaviour). */
  readonly maxAttempts: number;
}

export const NOTIFICATION_DEFAULTS = { timeoutSeconds: 5, backoffSeconds: 1, maxBackoffSeconds: 60, queueSize: 1000, maxAttempts: 0 } as const;

const KEYS = ['name', 'url', 'headers', 'timeoutSeconds', 'backoffSeconds', 'maxBackoffSeconds', 'queueSize', 'maxAttempts'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `raw` is the value of `notifications.endpoints` (undefined: no notifications). */
export function parseNotificationEndpoints(raw: unknown, key = 'notifications.endpoints'): NotificationEndpoint[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigError(`${key}: expected an array of endpoints like {"url": "https://hooks.example.com/registry"}, got ${show(raw)}`);
  return raw.map((entry, index) => parseEndpoint(entry, `${key}[${index}]`));
}

function parseEndpoint(value: unknown, key: string): NotificationEndpoint {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${key}: expected an object with at least "url", got ${show(value)}`);
  const entry = value as Record<string, unknown>;
  const unknown = Object.keys(entry).find((name) => !KEYS.includes(name));
  if (unknown !== undefined) throw new ConfigError(`${key}: unknown key ${JSON.stringify(unknown)} (an endpoint has ${KEYS.join(', ')})`);
  const url = parseUrl(entry.url, `${key}.url`);
  const backoffSeconds = positiveNumber(entry.backoffSeconds, `${key}.backoffSeconds`, NOTIFICATION_DEFAULTS.backoffSeconds);
  const maxBackoffSeconds = positiveNumber(entry.maxBackoffSeconds, `${key}.maxBackoffSeconds`, Math.max(NOTIFICATION_DEFAULTS.maxBackoffSeconds, backoffSeconds));
  if (maxBackoffSeconds < backoffSeconds) throw new ConfigError(`${key}.maxBackoffSeconds: must be at least backoffSeconds (${backoffSeconds}), got ${maxBackoffSeconds}`);
  return {
    name: parseName(entry.name, `${key}.name`) ?? new URL(url).host,
    url,
    headers: parseHeaders(entry.headers, `${key}.headers`),
    timeoutMs: positiveNumber(entry.timeoutSeconds, `${key}.timeoutSeconds`, NOTIFICATION_DEFAULTS.timeoutSeconds) * 1000,
    backoffMs: backoffSeconds * 1000,
    maxBackoffMs: maxBackoffSeconds * 1000,
    queueSize: integer(entry.queueSize, `${key}.queueSize`, NOTIFICATION_DEFAULTS.queueSize, 1),
    maxAttempts: integer(entry.maxAttempts, `${key}.maxAttempts`, NOTIFICATION_DEFAULTS.maxAttempts, 0),
  };
}

function parseUrl(value: unknown, key: string): string {
  if (typeof value !== 'string') throw new ConfigError(`${key}: expected an http(s) URL, got ${show(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${key}: ${show(value)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${key}: expected an http or https URL, got ${show(value)}`);
  return url.toString();
}

function parseName(value: unknown, key: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${key}: expected a non-empty string, got ${show(value)}`);
  return value;
}

function parseHeaders(value: unknown, key: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${key}: expected an object of header names to values, got ${show(value)}`);
  const headers: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    if (!HEADER_NAME.test(name)) throw new ConfigError(`${key}: ${JSON.stringify(name)} is not an HTTP header name`);
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length === 0 || values.some((entry) => typeof entry !== 'string' || /[\r\n\0]/.test(entry))) {
      throw new ConfigError(`${key}.${name}: expected a string (or a list of strings) without line breaks`);
    }
    headers[name] = values.join(', ');
  }
  return headers;
}

function positiveNumber(value: unknown, key: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ConfigError(`${key}: expected a positive number of seconds, got ${show(value)}`);
  return value;
}

function integer(value: unknown, key: string, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw new ConfigError(`${key}: expected an integer of at least ${minimum}, got ${show(value)}`);
  }
  return value;
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}
