/**
 * One request's hold on an upload session across the processes sharing the metadata store
 * (UploadStore.claim): taken before the request reads or writes the session, waited for while
 * another request holds it, kept alive while the request runs (a chunk may stream for minutes),
 * and given back when it settles. A process that dies holding it stops renewing it, and the
 * claim runs out after CLAIM_TTL_MS for the next request.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { keepAlive } from '../coordination/lease-timers.js';
import { BlobUploadInvalidError } from '../domain/errors.js';
import type { UploadStore } from '../metadata/metadata-store.js';

/**
 * How long a claim lasts without renewal; renewed every third of it. Short, because a process
 * killed mid-request leaves its claim behind and the client's next request (to a restarted or
 * another process) waits for it to run out; long enough that only an event loop stalled for
 * seconds loses it.
 */
export const CLAIM_TTL_MS = 6_000;
/** Waiting for a claim looks again after this, doubling up to MAX_CLAIM_POLL_MS. */
const FIRST_CLAIM_POLL_MS = 10;
const MAX_CLAIM_POLL_MS = 250;

export class SessionClaim {
  #lost = false;

  private constructor(private readonly id: string) {}

  /** Runs `work` holding session `id`'s claim, waiting for it first if another request holds it. */
  static async hold<T>(uploads: UploadStore, id: string, work: (claim: SessionClaim) => Promise<T>): Promise<T> {
    const holder = randomUUID();
    for (let pollMs = FIRST_CLAIM_POLL_MS; !(await uploads.claim(id, holder, CLAIM_TTL_MS)); pollMs = Math.min(pollMs * 2, MAX_CLAIM_POLL_MS)) {
      await sleep(pollMs);
    }
    const claim = new SessionClaim(id);
    const stopRenewing = keepAlive(CLAIM_TTL_MS / 3, () => uploads.claim(id, holder, CLAIM_TTL_MS), () => void (claim.#lost = true));
    try {
      return await work(claim);
    } finally {
      stopRenewing();
      // Not given back (the store is away): it runs out by itself.
      await uploads.unclaim(id, holder).catch(() => undefined);
    }
  }

  /**
   * Throws when the claim ran out under this request (a stall longer than CLAIM_TTL_MS) and
   * another request took it: what this one hashed may no longer be what the file holds.
   */
  assertHeld(): void {
    if (this.#lost) throw new BlobUploadInvalidError(`upload ${this.id} was taken over by another request while this one stalled: ask for its status and resume`);
  }
}
