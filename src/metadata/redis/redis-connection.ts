/**
 * The one ioredis client of a Redis metadata store, set up so that a Redis that is down or hung
 * costs a request milliseconds, never a hang:
 *
 * - `enableOfflineQueue: false`: while disconnected, a command fails at once instead of
 *   waiting in a queue for a reconnect that may take minutes.
 * - `maxRetriesPerRequest: 0` and no resending: a command lost with its connection fails
 *   rather than being replayed later (a replayed HINCRBY would count twice).
 * - `commandTimeout`: a server that accepted the connection but stopped answering (paused,
 *   partitioned) fails the command after that long.
 * - `connectTimeout` and a capped reconnect backoff: the client keeps trying in the background,
 *   and commands succeed again as soon as Redis is back.
 *
 * Every failure reaches callers as MetadataUnavailableError (UNAVAILABLE, 503), naming the
 * server without its password.
 */
import { Redis, ReplyError } from 'ioredis';
import { MetadataOptionError, MetadataUnavailableError, assertInteger } from '../metadata-errors.js';
import { RedisKeys } from './redis-keys.js';
import { defineScripts } from './redis-scripts.js';

export interface RedisMetadataStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS). */
  url: string;
  /** Put before every key, so several mirrors can share one Redis; default "registry-mirror:". */
  keyPrefix?: string;
  /** Give up a connection attempt after this long, in ms; default 2,000. */
  connectTimeoutMs?: number;
  /** Fail a command Redis has not answered after this long, in ms; default 2,000. */
  commandTimeoutMs?: number;
  /** Connection errors as they happen (the client keeps reconnecting); default: ignored. */
  onError?: (error: Error) => void;
  /**
   * Redis unreachable when opening: reject (the default: one-shot tools say so and exit), or
   * return a client that keeps reconnecting in the background (a server, which serves what its
   * disk and S3 hold meanwhile). A Redis that answers with an error (a wrong password, a missing
   * ACL) is a misconfiguration and rejects either way.
   */
  whenUnreachable?: 'reject' | 'reconnect';
}

export const DEFAULT_KEY_PREFIX = 'registry-mirror:';
const MAX_RECONNECT_DELAY_MS = 2_000;

export class RedisConnection {
  readonly keys: RedisKeys;
  readonly redis: Redis;
  readonly #server: string;
  #closed = false;

  private constructor(redis: Redis, keys: RedisKeys, server: string) {
    this.redis = redis;
    this.keys = keys;
    this.#server = server;
  }

  /**
   * Connects, or rejects with MetadataUnavailableError when Redis cannot be reached in time
   * (unless `whenUnreachable` is "reconnect": then `connected` is false and the client retries).
   */
  static async open(options: RedisMetadataStoreOptions): Promise<RedisConnection> {
    const { url, keyPrefix, connectTimeoutMs, commandTimeoutMs, whenUnreachable } = validateOptions(options);
    const redis = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: connectTimeoutMs,
      commandTimeout: commandTimeoutMs,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    });
    // Without a listener ioredis prints every connection error; the owner decides instead.
    let lastError: Error | undefined;
    redis.on('error', (error: Error) => {
      lastError = error;
      options.onError?.(error);
    });
    defineScripts(redis);
    const connection = new RedisConnection(redis, new RedisKeys(keyPrefix), describeServer(url));
    try {
      await redis.connect();
    } catch (error) {
      // connect() says only "Connection is closed."; an answer such as WRONGPASS came as an event.
      const cause = lastError instanceof ReplyError ? lastError : error;
      if (whenUnreachable === 'reconnect' && !(cause instanceof ReplyError)) return connection;
      redis.disconnect();
      throw connection.unavailable(cause);
    }
    return connection;
  }

  /** Whether the client is connected now (false while it reconnects). */
  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  /** Runs Redis commands; any failure becomes MetadataUnavailableError. */
  async call<T>(work: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await work(this.redis);
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  /** Idempotent; a Redis that is down does not keep close() waiting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  unavailable(error: unknown): MetadataUnavailableError {
    if (error instanceof MetadataUnavailableError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    return new MetadataUnavailableError(`metadata store Redis at ${this.#server} is unavailable: ${reason}`, error);
  }
}

function validateOptions(options: RedisMetadataStoreOptions): Required<Omit<RedisMetadataStoreOptions, 'onError'>> {
  const whenUnreachable = options?.whenUnreachable ?? 'reject';
  if (whenUnreachable !== 'reject' && whenUnreachable !== 'reconnect') throw new MetadataOptionError('whenUnreachable', '"reject" or "reconnect"', whenUnreachable);
  if (typeof options?.url !== 'string' || !/^rediss?:$/.test(parsedProtocol(options.url))) {
    throw new MetadataOptionError('url', 'a redis:// or rediss:// URL', redactPassword(options?.url));
  }
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (typeof keyPrefix !== 'string') throw new MetadataOptionError('keyPrefix', 'a string', keyPrefix);
  const connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
  assertInteger('connectTimeoutMs', connectTimeoutMs, 1);
  const commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
  assertInteger('commandTimeoutMs', commandTimeoutMs, 1);
  return { url: options.url, keyPrefix, connectTimeoutMs, commandTimeoutMs, whenUnreachable };
}

/** Option errors end up in logs: a password in a mistyped URL must not. */
function redactPassword(url: unknown): unknown {
  if (typeof url !== 'string') return url;
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^/@]*)@/, '//***@');
  }
}

function parsedProtocol(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}

/** host:port/db, never the credentials. */
function describeServer(url: string): string {
  const parsed = new URL(url);
  return `${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : ''}`;
}
