/**
 * Webhook notifications on push and delete (issue 14, "Events"). `publish` only appends to an
 * in-memory queue per endpoint and returns: a push never waits for, or fails because of, a
 * listener. Each endpoint's queue is drained by one sender, in order, several events per
 * envelope; a failed envelope is retried after an exponential back-off (backoff, 2x, 4x ... up
 * to maxBackoff) until it is delivered, or until maxAttempts when that is set. A queue holds at
 * most `queueSize` undelivered events; beyond that new events are dropped, with one warning
 * per episode and a count (compare distribution's notifications/sinks.go: its queue is
 * unbounded and its retries block forever).
 *
 * Delivered means any 2xx or 3xx answer, as distribution counts it (docs "Responses");
 * redirects are not followed. The queues live in this process: events still queued when it
 * stops are lost, as with distribution ("Considerations").
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import type { NotificationEndpoint } from './notification-config.js';
import { EVENTS_MEDIA_TYPE, envelope, registryEvent, type EventInput, type EventSource, type RegistryEvent } from './notification-events.js';

/** The pino methods used here, so tests can pass a recorder. */
export interface NotificationLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface NotifierOptions {
  source: EventSource;
  log: NotificationLog;
  /** Waits between attempts; injectable so tests can record the back-off. Must reject when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Events per envelope; default 100. */
  maxEventsPerEnvelope?: number;
}

export interface EndpointStats {
  name: string;
  url: string;
  pending: number;
  delivered: number;
  failedAttempts: number;
  dropped: number;
}

const realSleep = (ms: number, signal: AbortSignal) => sleepFor(ms, undefined, { signal, ref: false });

export class Notifier {
  readonly #queues: EndpointQueue[];
  readonly #source: EventSource;
  readonly #dispatcher: Agent;

  constructor(endpoints: readonly NotificationEndpoint[], options: NotifierOptions) {
    this.#source = options.source;
    this.#dispatcher = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
    this.#queues = endpoints.map((endpoint) => new EndpointQueue(endpoint, this.#dispatcher, options));
  }

  get enabled(): boolean {
    return this.#queues.length > 0;
  }

  /** Queues the event for every endpoint and returns at once. */
  publish(input: EventInput): void {
    if (this.#queues.length === 0) return;
    const event = registryEvent(input, this.#source);
    for (const queue of this.#queues) queue.enqueue(event);
  }

  stats(): EndpointStats[] {
    return this.#queues.map((queue) => queue.stats());
  }

  /** Gives queued events up to `drainMs` to be delivered, then stops every sender. */
  async close(drainMs = 0): Promise<void> {
    await Promise.all(this.#queues.map((queue) => queue.close(drainMs)));
    await this.#dispatcher.close();
  }
}

class EndpointQueue {
  readonly #pending: RegistryEvent[] = [];
  readonly #stopping = new AbortController();
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #maxBatch: number;
  #sender: Promise<void> | undefined;
  #draining = false;
  #delivered = 0;
  #failedAttempts = 0;
  #dropped = 0;
  #droppedThisEpisode = 0;

  constructor(
    readonly endpoint: NotificationEndpoint,
    readonly dispatcher: Dispatcher,
    readonly options: NotifierOptions,
  ) {
    this.#sleep = options.sleep ?? realSleep;
    this.#maxBatch = options.maxEventsPerEnvelope ?? 100;
  }

  enqueue(event: RegistryEvent): void {
    if (this.#stopping.signal.aborted) return;
    if (this.#pending.length >= this.endpoint.queueSize) {
      this.#dropped += 1;
      if (this.#droppedThisEpisode++ === 0) {
        this.options.log.warn({ endpoint: this.endpoint.name, queueSize: this.endpoint.queueSize }, 'notification queue full: dropping new events until the endpoint catches up');
      }
      return;
    }
    this.#pending.push(event);
    if (!this.#draining) {
      this.#draining = true;
      this.#sender = this.#drain();
    }
  }

  stats(): EndpointStats {
    const { name, url } = this.endpoint;
    return { name, url, pending: this.#pending.length, delivered: this.#delivered, failedAttempts: this.#failedAttempts, dropped: this.#dropped };
  }

  async close(drainMs: number): Promise<void> {
    if (this.#sender && drainMs > 0) {
      await Promise.race([this.#sender, sleepFor(drainMs, undefined, { ref: false })]);
    }
    this.#stopping.abort();
    await this.#sender;
  }

  /** Runs while events wait; `#draining` turns false in the same tick the queue is found empty. */
  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0 && !this.#stopping.signal.aborted) {
        const batch = this.#pending.slice(0, this.#maxBatch);
        await this.#deliver(batch);
        // Delivered or given up: either way these events leave the queue.
        this.#pending.splice(0, batch.length);
        this.#reportDropsEnded();
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Tries until delivered, stopped, or out of attempts. */
  async #deliver(batch: RegistryEvent[]): Promise<void> {
    const { maxAttempts, backoffMs, maxBackoffMs } = this.endpoint;
    for (let attempt = 1; !this.#stopping.signal.aborted; attempt++) {
      const failure = await this.#post(batch);
      if (failure === undefined) {
        this.#delivered += batch.length;
        return;
      }
      this.#failedAttempts += 1;
      const giveUp = maxAttempts > 0 && attempt >= maxAttempts;
      const waitMs = Math.min(backoffMs * 2 ** (attempt - 1), maxBackoffMs);
      const fields = { endpoint: this.endpoint.name, attempt, events: batch.length, error: failure };
      this.options.log.warn(giveUp ? fields : { ...fields, retryInMs: waitMs }, giveUp ? 'notification not delivered: giving up on these events' : 'notification not delivered: will retry');
      if (giveUp) return;
      await this.#sleep(waitMs, this.#stopping.signal).catch(() => undefined);
    }
  }

  /** undefined when delivered, else what went wrong. */
  async #post(batch: RegistryEvent[]): Promise<string | undefined> {
    const { url, headers, timeoutMs } = this.endpoint;
    try {
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { ...headers, 'content-type': EVENTS_MEDIA_TYPE },
        body: envelope(batch),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.any([this.#stopping.signal, AbortSignal.timeout(timeoutMs)]),
      });
      await response.body.dump();
      return response.statusCode >= 200 && response.statusCode < 400 ? undefined : `HTTP ${response.statusCode}`;
    } catch (error) {
      return (error as Error).message;
    }
  }

  #reportDropsEnded(): void {
    if (this.#droppedThisEpisode === 0 || this.#pending.length >= this.endpoint.queueSize) return;
    this.options.log.info({ endpoint: this.endpoint.name, dropped: this.#droppedThisEpisode }, 'notification queue has room again');
    this.#droppedThisEpisode = 0;
  }
}
