/**
 * A blob body streamed to a client carries a fixed set of 'close' listeners on its Node
 * response: Node's own pipeline (five), @hono/node-server's, and the mirror's (client gone,
 * send watchdog, stream end, access log). Eleven are more than EventEmitter's default of 10,
 * and the warning it then prints is a line on stderr that is not JSON, which breaks log
 * pipelines that parse every line (test/interop/production.test.ts caught it). The count is
 * fixed per response, not a leak, so the response's limit is raised to fit it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get, sha256 } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { type E2eSetup, startE2e } from './e2e-fixture.js';

let e2e: E2eSetup | undefined;
const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);
afterEach(async () => {
  process.off('warning', onWarning);
  warnings.splice(0);
  await e2e?.close();
  e2e = undefined;
});

describe('listeners on a response', () => {
  it('a cold blob streamed to the client (sendfile off) prints no MaxListenersExceededWarning', async () => {
    e2e = await startE2e({ config: { sendfile: false } });
    const image = makeImage({ layers: [3 * 1024 * 1024], seed: 'response-listeners' });
    pushImage(e2e.fake, 'library/listeners', 'v1', image);
    process.on('warning', onWarning);
    const layer = image.layers[0]!;
    const answers = await Promise.all([1, 2, 3].map(() => get(`${e2e!.mirror.url}/v2/library/listeners/blobs/${layer.digest}`)));
    for (const answer of answers) expect([answer.status, sha256(answer.body)]).toEqual([200, layer.digest]);
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings.map((warning) => warning.name)).not.toContain('MaxListenersExceededWarning');
  });
});
