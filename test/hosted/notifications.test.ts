/**
 * Webhook notifications (src/hosted/notifications.ts) against a real HTTP sink on port 0: the
 * envelope distribution's listeners expect, retries after failures with exponential back-off
 * (recorded through the injectable sleep, and measured at the sink with small real intervals),
 * the queue bound, and that a slow or dead endpoint never holds up a publisher or another endpoint.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNotificationEndpoints, type NotificationEndpoint } from '../../src/hosted/notification-config.js';
import { EVENTS_MEDIA_TYPE, type RegistryEvent } from '../../src/hosted/notification-events.js';
import { Notifier, type NotificationLog } from '../../src/hosted/notifications.js';

const WAIT_DEADLINE_MS = 10_000;
const DIGEST = `sha256:${'a'.repeat(64)}`;

interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  events: RegistryEvent[];
}

/** A listener that records every POST and answers with what `respond` says (a status, or 'hang'). */
class Sink {
  readonly received: Received[] = [];
  respond: (index: number) => number | 'hang' = () => 200;
  readonly #hanging: ServerResponse[] = [];

  private constructor(
    readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<Sink> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sink = new Sink(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`);
    server.on('request', (req, res) => sink.#handle(req, res));
    return sink;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const index = this.received.length;
      this.received.push({ at: performance.now(), headers: req.headers, events: (JSON.parse(Buffer.concat(chunks).toString()) as { events: RegistryEvent[] }).events });
      const answer = this.respond(index);
      if (answer === 'hang') this.#hanging.push(res);
      else res.writeHead(answer).end();
    });
  }

  /** Answers every held request with `status`. */
  release(status = 200): void {
    for (const res of this.#hanging.splice(0)) res.writeHead(status).end();
  }

  events(): RegistryEvent[] {
    return this.received.flatMap((entry) => entry.events);
  }

  async close(): Promise<void> {
    this.release(503);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

class RecordingLog implements NotificationLog {
  readonly lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  warn(fields: object, message: string): void {
    this.lines.push({ level: 'warn', message, fields: fields as Record<string, unknown> });
  }
  info(fields: object, message: string): void {
    this.lines.push({ level: 'info', message, fields: fields as Record<string, unknown> });
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sink(): Promise<Sink> {
  const started = await Sink.start();
  cleanups.push(() => started.close());
  return started;
}

function endpoint(url: string, overrides: Record<string, unknown> = {}): NotificationEndpoint {
  return parseNotificationEndpoints([{ url, backoffSeconds: 0.01, ...overrides }])[0]!;
}

function notifier(endpoints: NotificationEndpoint[], log = new RecordingLog(), sleepRecorder?: number[]): Notifier {
  const recordingSleep = sleepRecorder
    ? async (ms: number, signal: AbortSignal) => {
        sleepRecorder.push(ms);
        await sleep(ms, undefined, { signal });
      }
    : undefined;
  const created = new Notifier(endpoints, { source: { addr: 'mirror.test:5000', instanceID: 'instance-1' }, log, ...(recordingSleep ? { sleep: recordingSleep } : {}) });
  cleanups.push(() => created.close());
  return created;
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function push(n: number) {
  return {
    action: 'push' as const,
    repository: 'team/app',
    digest: `sha256:${String(n).padStart(64, '0')}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 100 + n,
    tag: `v${n}`,
    url: `https://mirror.test:5000/v2/team/app/manifests/sha256:${String(n).padStart(64, '0')}`,
    request: { id: `request-${n}`, addr: '10.0.0.7:51234', host: 'mirror.test:5000', method: 'PUT', userAgent: 'docker/20.10.24' },
    user: 'ci',
  };
}

describe('envelope', () => {
  it('POSTs distribution\'s v1 envelope with the configured headers', async () => {
    const listener = await sink();
    const sent = notifier([endpoint(listener.url, { headers: { Authorization: 'Bearer secret', 'X-Multi': ['a', 'b'] } })]);
    expect(sent.publish(push(1))).toBeUndefined();
    await until('one delivery', () => listener.received.length === 1);
    const [received] = listener.received;
    expect(received!.headers['content-type']).toBe(EVENTS_MEDIA_TYPE);
    expect(received!.headers.authorization).toBe('Bearer secret');
    expect(received!.headers['x-multi']).toBe('a, b');
    const [event] = received!.events;
    expect(event!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Math.abs(Date.parse(event!.timestamp) - Date.now())).toBeLessThan(60_000);
    expect(event).toEqual({
      id: event!.id,
      timestamp: event!.timestamp,
      action: 'push',
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 101,
        digest: `sha256:${'1'.padStart(64, '0')}`,
        length: 101,
        repository: 'team/app',
        url: `https://mirror.test:5000/v2/team/app/manifests/sha256:${'1'.padStart(64, '0')}`,
        tag: 'v1',
      },
      request: { id: 'request-1', addr: '10.0.0.7:51234', host: 'mirror.test:5000', method: 'PUT', useragent: 'docker/20.10.24' },
      actor: { name: 'ci' },
      source: { addr: 'mirror.test:5000', instanceID: 'instance-1' },
    });
  });

  it('a delete carries what is known and leaves out the rest (omitempty)', async () => {
    const listener = await sink();
    const sent = notifier([endpoint(listener.url)]);
    sent.publish({ action: 'delete', repository: 'team/app', digest: DIGEST, request: { id: 'r', method: 'DELETE' } });
    await until('one delivery', () => listener.received.length === 1);
    const [event] = listener.events();
    expect(event!.target).toEqual({ digest: DIGEST, repository: 'team/app' });
    expect(event!.actor).toEqual({});
    expect(event!.request).toEqual({ id: 'r', method: 'DELETE', useragent: '' });
  });

  it('events published while one is in flight go together in the next envelope, in order', async () => {
    const listener = await sink();
    listener.respond = (index) => (index === 0 ? 'hang' : 200);
    const sent = notifier([endpoint(listener.url)]);
    sent.publish(push(1));
    await until('the first POST', () => listener.received.length === 1);
    for (const n of [2, 3, 4]) sent.publish(push(n));
    listener.release();
    await until('the second envelope confirmed', () => sent.stats()[0]!.delivered === 4);
    expect(listener.received.map((entry) => entry.events.map((event) => event.target.tag))).toEqual([['v1'], ['v2', 'v3', 'v4']]);
    expect(sent.stats()[0]).toMatchObject({ delivered: 4, pending: 0, failedAttempts: 0, dropped: 0 });
  });
});

describe('retries', () => {
  it('retries the same envelope after 500s, with doubling back-off capped at maxBackoffSeconds', async () => {
    const listener = await sink();
    listener.respond = (index) => (index < 5 ? 500 : 202);
    const waits: number[] = [];
    const log = new RecordingLog();
    const sent = notifier([endpoint(listener.url, { backoffSeconds: 0.01, maxBackoffSeconds: 0.04 })], log, waits);
    sent.publish(push(1));
    await until('delivery after five failures', () => sent.stats()[0]!.delivered === 1);
    expect(listener.received).toHaveLength(6);
    expect(waits).toEqual([10, 20, 40, 40, 40]);
    expect(new Set(listener.received.map((entry) => entry.events[0]!.id)).size).toBe(1);
    expect(sent.stats()[0]).toMatchObject({ delivered: 1, failedAttempts: 5, pending: 0 });
    expect(log.lines.filter((line) => line.message === 'notification not delivered: will retry').map((line) => [line.fields.attempt, line.fields.error, line.fields.retryInMs]))
      .toEqual([[1, 'HTTP 500', 10], [2, 'HTTP 500', 20], [3, 'HTTP 500', 40], [4, 'HTTP 500', 40], [5, 'HTTP 500', 40]]);
  });

  it('spaces real attempts at least the back-off apart, as the sink sees them', async () => {
    const listener = await sink();
    listener.respond = (index) => (index < 3 ? 503 : 200);
    const sent = notifier([endpoint(listener.url, { backoffSeconds: 0.05, maxBackoffSeconds: 1 })]);
    sent.publish(push(1));
    await until('delivery', () => listener.received.length === 4);
    const gaps = listener.received.slice(1).map((entry, index) => entry.at - listener.received[index]!.at);
    // Timers never fire early; 2 ms covers the clock granularity between the two processes' views.
    [50, 100, 200].forEach((minimum, index) => expect(gaps[index]).toBeGreaterThanOrEqual(minimum - 2));
  });

  it('retries after a 4xx and a refused connection; 3xx counts as delivered', async () => {
    const listener = await sink();
    listener.respond = (index) => [400, 302][index] ?? 200;
    const sent = notifier([endpoint(listener.url)]);
    sent.publish(push(1));
    await until('two attempts', () => listener.received.length === 2);
    await until('counted as delivered', () => sent.stats()[0]!.delivered === 1);
    expect(sent.stats()[0]!.failedAttempts).toBe(1);

    const dead = await sink();
    const deadUrl = dead.url;
    await dead.close();
    const log = new RecordingLog();
    const refused = notifier([endpoint(deadUrl, { maxAttempts: 2 })], log);
    refused.publish(push(2));
    await until('two failed attempts', () => refused.stats()[0]!.failedAttempts === 2);
    expect(log.lines.at(-1)?.message).toBe('notification not delivered: giving up on these events');
    expect(String(log.lines[0]?.fields.error)).toMatch(/ECONNREFUSED|connect/i);
  });

  it('an endpoint that does not answer times out and is tried again', async () => {
    const listener = await sink();
    listener.respond = (index) => (index === 0 ? 'hang' : 200);
    const log = new RecordingLog();
    const sent = notifier([endpoint(listener.url, { timeoutSeconds: 0.2 })], log);
    sent.publish(push(1));
    await until('the retry', () => listener.received.length === 2);
    await until('delivered', () => sent.stats()[0]!.delivered === 1);
    expect(log.lines[0]?.message).toBe('notification not delivered: will retry');
  });

  it('with maxAttempts, gives up on an envelope and goes on with the next events', async () => {
    const listener = await sink();
    listener.respond = (index) => (index < 2 ? 500 : 200);
    const log = new RecordingLog();
    const sent = notifier([endpoint(listener.url, { maxAttempts: 2 })], log);
    sent.publish(push(1));
    await until('two attempts', () => listener.received.length === 2);
    sent.publish(push(2));
    await until('the next event confirmed', () => sent.stats()[0]!.delivered === 1);
    expect(listener.received[2]!.events.map((event) => event.target.tag)).toEqual(['v2']);
    expect(log.lines.filter((line) => line.message.includes('giving up'))).toHaveLength(1);
    expect(sent.stats()[0]).toMatchObject({ delivered: 1, failedAttempts: 2, pending: 0 });
  });
});

describe('never blocking, bounded', () => {
  it('drops new events beyond queueSize with one warning, and says how many once there is room', async () => {
    const listener = await sink();
    listener.respond = (index) => (index === 0 ? 'hang' : 200);
    const log = new RecordingLog();
    const sent = notifier([endpoint(listener.url, { queueSize: 3 })], log);
    sent.publish(push(1));
    await until('the first POST', () => listener.received.length === 1);
    for (const n of [2, 3, 4, 5, 6]) sent.publish(push(n));
    expect(sent.stats()[0]).toMatchObject({ pending: 3, dropped: 3 });
    expect(log.lines.filter((line) => line.level === 'warn')).toEqual([
      { level: 'warn', message: 'notification queue full: dropping new events until the endpoint catches up', fields: { endpoint: '127.0.0.1:' + new URL(listener.url).port, queueSize: 3 } },
    ]);
    listener.release();
    await until('the rest delivered', () => sent.stats()[0]!.delivered === 3);
    expect(listener.events().map((event) => event.target.tag)).toEqual(['v1', 'v2', 'v3']);
    expect(log.lines.find((line) => line.level === 'info')?.fields).toMatchObject({ dropped: 3 });
  });

  it('a hanging endpoint holds up neither the publisher nor another endpoint', async () => {
    const stuck = await sink();
    stuck.respond = () => 'hang';
    const healthy = await sink();
    const sent = notifier([endpoint(stuck.url, { timeoutSeconds: 30 }), endpoint(healthy.url)]);
    for (let n = 1; n <= 50; n++) sent.publish(push(n));
    await until('the healthy endpoint confirmed all 50', () => sent.stats()[1]!.delivered === 50);
    expect(healthy.events()).toHaveLength(50);
    expect(stuck.received).toHaveLength(1);
    expect(sent.stats().map((stats) => stats.pending)).toEqual([50, 0]);
  });

  it('close() stops a sender waiting on a hanging endpoint (it does not wait out the 30 s timeout); later events are ignored', async () => {
    const stuck = await sink();
    stuck.respond = () => 'hang';
    const sent = new Notifier([endpoint(stuck.url, { timeoutSeconds: 30 })], { source: {}, log: new RecordingLog() });
    sent.publish(push(1));
    await until('the POST', () => stuck.received.length === 1);
    await sent.close(50);
    sent.publish(push(2));
    await sleep(50);
    expect(stuck.received).toHaveLength(1);
    expect(sent.stats()[0]).toMatchObject({ pending: 0, delivered: 0 });
  });
});

describe('notifications.endpoints config', () => {
  it('fills defaults; name defaults to the host', () => {
    expect(parseNotificationEndpoints(undefined)).toEqual([]);
    expect(parseNotificationEndpoints([{ url: 'https://hooks.example.com/registry' }])).toEqual([{
      name: 'hooks.example.com', url: 'https://hooks.example.com/registry', headers: {},
      timeoutMs: 5000, backoffMs: 1000, maxBackoffMs: 60_000, queueSize: 1000, maxAttempts: 0,
    }]);
  });

  const refused: Array<[unknown, RegExp]> = [
    [{ endpoints: 1 }, /^notifications\.endpoints: expected an array of endpoints/],
    [['https://x'], /^notifications\.endpoints\[0\]: expected an object with at least "url"/],
    [[{}], /^notifications\.endpoints\[0\]\.url: expected an http\(s\) URL, got undefined/],
    [[{ url: 'ftp://x/y' }], /^notifications\.endpoints\[0\]\.url: expected an http or https URL, got "ftp:\/\/x\/y"/],
    [[{ url: 'not a url' }], /^notifications\.endpoints\[0\]\.url: "not a url" is not a URL/],
    [[{ url: 'http://x', threshold: 5 }], /^notifications\.endpoints\[0\]: unknown key "threshold"/],
    [[{ url: 'http://x', timeoutSeconds: 0 }], /^notifications\.endpoints\[0\]\.timeoutSeconds: expected a positive number of seconds, got 0/],
    [[{ url: 'http://x', backoffSeconds: '1s' }], /^notifications\.endpoints\[0\]\.backoffSeconds: expected a positive number of seconds, got "1s"/],
    [[{ url: 'http://x', backoffSeconds: 10, maxBackoffSeconds: 5 }], /maxBackoffSeconds: must be at least backoffSeconds \(10\), got 5/],
    [[{ url: 'http://x', queueSize: 0 }], /^notifications\.endpoints\[0\]\.queueSize: expected an integer of at least 1, got 0/],
    [[{ url: 'http://x', maxAttempts: -1 }], /maxAttempts: expected an integer of at least 0, got -1/],
    [[{ url: 'http://x', headers: { 'Bad Header': 'x' } }], /headers: "Bad Header" is not an HTTP header name/],
    [[{ url: 'http://x', headers: { A: 'x\r\nB: y' } }], /headers\.A: expected a string \(or a list of strings\) without line breaks/],
    [[{ url: 'http://x', name: '' }], /\.name: expected a non-empty string/],
  ];
  for (const [raw, message] of refused) {
    it(`refuses ${JSON.stringify(raw).slice(0, 60)}`, () => expect(() => parseNotificationEndpoints(raw)).toThrow(message));
  }
});
