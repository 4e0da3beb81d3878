/**
 * The Redis connections of cross-process coordination (leases, flights, the fleet-wide upstream
 * bound), with the metadata store's connection settings (src/metadata/redis/redis-connection.ts)
 * and one difference: coordination is an optimisation, so the object is built at once and
 * connects in the background. A mirror starts while Redis is down, and:
 *
 * - every command fails at once while disconnected (no offline queue), after commandTimeoutMs
 *   when Redis accepted the connection but stopped answering, never later;
 * - a command lost with its connection is not replayed (no retries, no resending);
 * - the client reconnects with a backoff capped at 2 s, so coordination resumes by itself.
 *
 * Two connections: one for commands, and one in subscriber mode (a subscribed connection can
 * run nothing else), which ioredis resubscribes after every reconnect. Messages published while
 * it is down are lost; every waiter also polls for that reason.
 *
 * Keys and channels, under the metadata store's prefix (default "registry-mirror:"):
 *   <p>lease:<key>          string "<token> <owner>", with PX expiry: who runs the flight for <key>
 *   <p>slots:<upstream>     zset: slot tokens scored by expiry (Redis TIME, ms)
 *   <p>lease:released       channel: JSON {key, outcome} when an owner releases a lease
 *   <p>slots:released       channel: the upstream one of whose slots was released
 */
import { Redis } from 'ioredis';
import { DEFAULT_KEY_PREFIX } from '../metadata/redis/redis-connection.js';
import { CoordinationOptionError, CoordinationUnavailableError, assertIntegerOption } from './coordination-errors.js';
import { defineCoordinationScripts, runCoordinationScript, type CoordinationScript } from './redis-coordination-scripts.js';

export interface RedisCoordinationOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS). */
  url: string;
  /** Put before every key and channel; default "registry-mirror:", as the metadata store. */
  keyPrefix?: string;
  /** Give up a connection attempt after this long, in ms; default 2,000. */
  connectTimeoutMs?: number;
  /** Fail a command Redis has not answered after this long, in ms; default 2,000. */
  commandTimeoutMs?: number;
  /** Connection errors as they happen (the clients keep reconnecting); default: ignored. */
  onError?: (error: Error) => void;
}

export type MessageListener = (message: string) => void;

const MAX_RECONNECT_DELAY_MS = 2_000;

export class RedisCoordination {
  readonly prefix: string;
  readonly leaseReleasedChannel: string;
  readonly slotReleasedChannel: string;
  readonly #commands: Redis;
  readonly #subscriber: Redis;
  readonly #listeners = new Map<string, Set<MessageListener>>();
  readonly #subscribed: Promise<unknown>;
  readonly #server: string;
  #closed = false;

  /** Starts connecting in the background; commands fail fast until Redis answers. */
  constructor(options: RedisCoordinationOptions) {
    const { url, keyPrefix, connectTimeoutMs, commandTimeoutMs } = validateOptions(options);
    this.prefix = keyPrefix;
    this.leaseReleasedChannel = `${keyPrefix}lease:released`;
    this.slotReleasedChannel = `${keyPrefix}slots:released`;
    this.#server = describeServer(url);
    const shared = { connectTimeout: connectTimeoutMs, retryStrategy: (attempt: number) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS) };
    this.#commands = new Redis(url, { ...shared, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, commandTimeout: commandTimeoutMs });
    // SUBSCRIBE waits for the connection (the only command this client ever queues), and is
    // sent again by ioredis after every reconnect.
    this.#subscriber = new Redis(url, { ...shared, maxRetriesPerRequest: null, autoResubscribe: true });
    for (const client of [this.#commands, this.#subscriber]) client.on('error', (error: Error) => options.onError?.(error));
    defineCoordinationScripts(this.#commands);
    this.#subscriber.on('message', (channel: string, message: string) => this.#dispatch(channel, message));
    this.#subscribed = this.#subscriber.subscribe(this.leaseReleasedChannel, this.slotReleasedChannel);
    this.#subscribed.catch(() => {});
  }

  /** Resolves once both connections are up (tests, and callers that prefer to wait at start). */
  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.unavailable(new Error(`not connected within ${timeoutMs} ms`))), timeoutMs);
    });
    const connected = this.#commands.status === 'ready' ? Promise.resolve() : new Promise((resolve) => this.#commands.once('ready', resolve));
    try {
      await Promise.race([Promise.all([connected, this.#subscribed]), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs Redis commands; any failure becomes CoordinationUnavailableError. */
  async call<T>(work: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await work(this.#commands);
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  /**
   * Runs a script; its command is written before this returns, so commands issued afterwards on
   * this connection run after it (a release before the next acquire of the same key).
   */
  script(name: CoordinationScript, keys: string[], args: Array<string | number>): Promise<unknown> {
    return this.call((redis) => runCoordinationScript(redis, name, keys, args));
  }

  /** Calls `listener` with every message on `channel` (one of the two above) until the returned function is called. */
  listen(channel: string, listener: MessageListener): () => void {
    let listeners = this.#listeners.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(channel, listeners);
    }
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }

  /** Idempotent; a Redis that is down does not keep close() waiting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#commands, this.#subscriber].map(async (client) => {
      try {
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      } catch {
        client.disconnect();
      }
    }));
  }

  unavailable(error: unknown): CoordinationUnavailableError {
    if (error instanceof CoordinationUnavailableError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    return new CoordinationUnavailableError(`coordination Redis at ${this.#server} is unavailable: ${reason}`, error);
  }

  #dispatch(channel: string, message: string): void {
    for (const listener of this.#listeners.get(channel) ?? []) listener(message);
  }
}

function validateOptions(options: RedisCoordinationOptions): Required<Omit<RedisCoordinationOptions, 'onError'>> {
  const url = options?.url;
  if (typeof url !== 'string' || !/^rediss?:$/.test(protocolOf(url))) throw new CoordinationOptionError('url', 'a redis:// or rediss:// URL', redactPassword(url));
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (typeof keyPrefix !== 'string') throw new CoordinationOptionError('keyPrefix', 'a string', keyPrefix);
  const connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
  assertIntegerOption('connectTimeoutMs', connectTimeoutMs, 1);
  const commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
  assertIntegerOption('commandTimeoutMs', commandTimeoutMs, 1);
  return { url, keyPrefix, connectTimeoutMs, commandTimeoutMs };
}

function protocolOf(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}

/** Option errors end up in logs: a password in a mistyped URL must not. */
function redactPassword(url: unknown): unknown {
  return typeof url === 'string' ? url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@') : url;
}

/** host:port/db, never the credentials. */
function describeServer(url: string): string {
  const parsed = new URL(url);
  return `${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : ''}`;
}
