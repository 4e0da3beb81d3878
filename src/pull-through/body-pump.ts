/**
 * Moves an upstream body into a sink chunk by chunk, as the socket delivers it. A blob body from
 * the upstream's own client (upstream/blob-socket-client.ts) hands its chunks over itself, as
 * views of the buffer its connection reads into: such a chunk is valid during the sink's call and
 * until the promise the sink returns settles, not after (a writer's `write` keeps it no longer
 * than that: storage/content-store.ts). Any other body flows
 * ('data' events): each chunk is handed over as undici parsed it, without the copy that reading
 * a paused stream makes when several chunks are buffered (Readable `fromList`), and without a
 * promise per chunk, which `for await` costs (docs/benchmarks.md, "Where the time goes on a
 * miss"). When the sink cannot take a chunk at once it returns a promise, and the body is paused
 * until that settles: backpressure reaches the upstream's socket.
 *
 * Settles once the body ended and the sink took every chunk, or with the first error: the
 * body's (a broken connection, undici's body timeout, a premature close), or the sink's.
 */
import { finished, type Readable } from 'node:stream';
import { isDirectBody } from '../upstream/blob-socket-client.js';

/** Takes a chunk: undefined when done with it, or a promise to wait for before the next one. */
export type ChunkSink = (chunk: Buffer) => Promise<void> | undefined;

export function pumpBody(body: Readable, sink: ChunkSink): Promise<void> {
  if (isDirectBody(body)) return body.deliverTo(sink);
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    let waiting: Promise<void> | undefined;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      body.off('data', onData);
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      try {
        waiting = sink(chunk);
      } catch (error) {
        fail(error);
        return;
      }
      if (waiting === undefined) return;
      body.pause();
      waiting.then(() => {
        waiting = undefined;
        if (!failed) body.resume();
      }, fail);
    };
    body.on('data', onData);
    finished(body, (error) => {
      if (error) return fail(error);
      // The last chunk may still be on its way into the sink.
      void (waiting ?? Promise.resolve()).then(() => {
        if (!failed) resolve();
      }, fail);
    });
  });
}
