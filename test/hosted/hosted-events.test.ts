/**
 * Webhook notifications wired to hosted pushes and deletes (notifications.endpoints): distribution's
 * envelope, one event per blob push, mount, manifest push (with its tag) and delete, and a push
 * that never waits for a listener, even one that never answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { basicAuth, waitFor } from '../helpers/http.js';
import { makeImage } from '../helpers/test-images.js';
import { call, pushImageTo, startHosted, type HostedSetup } from './hosted-fixture.js';

interface Envelope {
  events: Array<{ action: string; target: { repository: string; digest: string; tag?: string; mediaType?: string; size?: number; url?: string; fromRepository?: string }; actor: { name?: string }; request: { method: string; useragent: string } }>;
}

let env: HostedSetup | undefined;
let listener: Server | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
  listener?.closeAllConnections();
  await new Promise((resolve) => listener?.close(resolve) ?? resolve(undefined));
  listener = undefined;
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<string> {
  listener = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => listener!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(listener.address() as AddressInfo).port}/events`;
}

const AUTH = { authorization: basicAuth('ci', 'ci-secret'), 'user-agent': 'events-test/1.0' };

describe('notifications on hosted pushes and deletes', () => {
  it('sends push, mount and delete events in distribution\'s envelope', async () => {
    const received: Envelope[] = [];
    const contentTypes: string[] = [];
    const url = await listen((req, res, body) => {
      contentTypes.push(req.headers['content-type'] ?? '');
      received.push(JSON.parse(body) as Envelope);
      res.writeHead(200).end();
    });
    env = await startHosted({ users: { ci: 'ci-secret' }, config: { notifications: { endpoints: [{ url }] } } });
    const image = makeImage({ layers: [100], seed: 'events' });
    await pushImageTo(env.mirror.url, 'team/app', 'v1', image, AUTH);
    await call(env.url(`/v2/team/other/blobs/uploads/?mount=${image.layers[0]!.digest}&from=team/app`), { method: 'POST', headers: AUTH });
    await call(env.url('/v2/team/app/manifests/v1'), { method: 'DELETE', headers: AUTH });
    const events = () => received.flatMap((envelope) => envelope.events);
    await waitFor(() => events().length >= 5, 5000, 'five events');
    expect(contentTypes.every((type) => type === 'application/vnd.docker.distribution.events.v1+json')).toBe(true);
    expect(events().map((event) => [event.action, event.target.repository, event.target.digest, event.target.tag])).toEqual([
      ['push', 'team/app', image.config.digest, undefined],
      ['push', 'team/app', image.layers[0]!.digest, undefined],
      ['push', 'team/app', image.manifest.digest, 'v1'],
      ['mount', 'team/other', image.layers[0]!.digest, undefined],
      ['delete', 'team/app', image.manifest.digest, 'v1'],
    ]);
    const manifestPush = events()[2]!;
    expect(manifestPush.target).toMatchObject({ mediaType: image.manifest.mediaType, size: image.manifest.size, url: `${env.mirror.url}/v2/team/app/manifests/${image.manifest.digest}` });
    expect(manifestPush.actor).toEqual({ name: 'ci' });
    expect(manifestPush.request).toMatchObject({ method: 'PUT', useragent: 'events-test/1.0' });
    expect(events()[3]!.target.fromRepository).toBe('team/app');
  });

  it('a listener that never answers does not slow a push down', async () => {
    let requests = 0;
    const url = await listen(() => {
      requests += 1;
    });
    env = await startHosted({ users: { ci: 'ci-secret' }, config: { notifications: { endpoints: [{ url, timeoutSeconds: 30 }] } } });
    await pushImageTo(env.mirror.url, 'team/app', 'v1', makeImage({ layers: [100, 200], seed: 'events-stuck' }), AUTH);
    await waitFor(() => requests >= 1, 5000, 'the stuck listener was called');
    // The whole push returned, and the first envelope still hangs on the listener, undelivered.
    const stats = env.mirror.mirror.hosted.notifier.stats()[0]!;
    expect(stats).toMatchObject({ delivered: 0, failedAttempts: 0 });
    expect(stats.pending).toBe(4);
  });
});
