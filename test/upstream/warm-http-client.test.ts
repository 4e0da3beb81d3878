/**
 * `serve` has undici compile its parser at start (src/upstream/warm-http-client.ts) with one
 * request to a server of its own on 127.0.0.1: answered, then that server and its connection
 * are gone.
 */
import { describe, expect, it } from 'vitest';
import { warmHttpClient } from '../../src/upstream/warm-http-client.js';
import { waitFor } from '../helpers/http.js';

const tcpHandles = () => process.getActiveResourcesInfo().filter((kind) => kind.startsWith('TCP')).length;

describe('warming the HTTP client', () => {
  it('gets its own server\'s 204 and leaves no server or connection behind', async () => {
    const before = tcpHandles();
    expect(await warmHttpClient()).toBe(true);
    // Connection: close: undici drops its socket once the answer ended, a turn or two later.
    await waitFor(() => tcpHandles() === before, 2_000, 'no TCP handle left');
  });

  it('can run twice at once (two throwaway ports), and both succeed', async () => {
    expect(await Promise.all([warmHttpClient(), warmHttpClient()])).toEqual([true, true]);
  });
});
