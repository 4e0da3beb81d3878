/**
 * Blob upload sessions (distribution-spec "Push": POST opens one, PATCH appends, PUT closes it
 * with the digest, GET reports it, DELETE cancels it). The session lives in the metadata store
 * and its bytes in a resumable content-store writer, so any process sharing the stores can
 * continue it (DESIGN.md: distribution keeps upload state per replica, distribution#1402). The
 * writer stays open in the process that last wrote to it; a process that finds the session
 * further along than its own writer (another process appended), or has no writer (a restart),
 * resumes it by id, which hashes again what it holds. What the writer holds is the truth: a
 * process killed mid-PATCH leaves bytes the session record does not count yet, and the next
 * request reports and continues from them.
 *
 * Requests to one session are handled one at a time: in arrival order within a process, and
 * across the processes sharing the metadata store (`serve --workers`, servers on one cache,
 * replicas) by a claim on the session in that store (session-claim.ts), which a request waits
 * for. Without it two processes given one chunk at once both wrote it at the same offset, and
 * the one that finished the upload published the other's bytes under its own hash.
 *
 * Sessions not written to for `hosted.uploadExpirySeconds` expire with their bytes (`expire`,
 * which the garbage collector's periodic run calls).
 */
import { randomUUID } from 'node:crypto';
import type { Digest } from '../domain/digest.js';
import { BlobUploadInvalidError, BlobUploadUnknownError, MirrorError, UploadOutOfOrderError } from '../domain/errors.js';
import type { UploadSession, UploadStore } from '../metadata/metadata-store.js';
import type { ContentStore, ContentWriter } from '../storage/content-store.js';
import { SessionClaim } from './session-claim.js';
import { writeBody, type PieceSize } from './upload-body.js';

export interface UploadSessionsOptions {
  content: ContentStore;
  uploads: UploadStore;
  /** `hosted.uploadExpirySeconds` in ms. */
  expiryMs: number;
  /** How bodies are written to the store (upload-body.ts); default the object-store pieces. */
  pieces?: PieceSize;
}

/** A request body and what its headers announced about it. */
export interface UploadBody {
  stream: AsyncIterable<Uint8Array>;
  /** Inclusive Content-Range of a chunk, when sent. */
  range?: { start: number; end: number };
  /** Content-Length, when sent. */
  length?: number;
}

const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class UploadSessions {
  readonly #open = new Map<string, ContentWriter>();
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: UploadSessionsOptions) {}

  async start(repository: string): Promise<UploadSession> {
    const writer = await this.options.content.writer({ resumable: true });
    const now = Date.now();
    const session: UploadSession = { id: randomUUID(), repository, writerId: writer.id, offset: 0, startedAt: now, updatedAt: now };
    try {
      await this.options.uploads.put(session);
    } catch (error) {
      await writer.cancel();
      throw error;
    }
    this.#open.set(session.id, writer);
    return session;
  }

  /** The session with the bytes it holds now. */
  status(repository: string, id: string): Promise<UploadSession> {
    return this.#exclusive(id, async () => {
      const session = await this.#session(repository, id);
      await this.#writer(session);
      return session;
    });
  }

  /** Appends a chunk (PATCH): in order, or 416 with what the session holds. */
  append(repository: string, id: string, body: UploadBody): Promise<UploadSession> {
    return this.#exclusive(id, async (claim) => {
      const session = await this.#session(repository, id);
      const writer = await this.#writer(session);
      await this.#receive(session, writer, body);
      claim.assertHeld();
      return session;
    });
  }

  /** Closes the session (PUT ?digest=): the last chunk if any, then the whole blob is verified and published. */
  finish(repository: string, id: string, digest: Digest, body: UploadBody): Promise<{ digest: Digest; size: number }> {
    return this.#exclusive(id, async (claim) => {
      const session = await this.#session(repository, id);
      const writer = await this.#writer(session);
      // A blob the store holds already (pushed again) is dropped at the commit, not published:
      // flushing its bytes to the disk while they arrive would be work for nothing.
      const flushEarly = !(writer.flushSoFar && (await this.options.content.stat(digest)));
      await this.#receive(session, writer, body, flushEarly);
      try {
        // Held all along, or another process may have written to the file since it was hashed.
        claim.assertHeld();
        return await writer.commit(digest);
      } finally {
        // Published, or refused (the writer is then cancelled): the session is over either way.
        this.#open.delete(id);
        await this.options.uploads.delete(id);
      }
    });
  }

  cancel(repository: string, id: string): Promise<void> {
    return this.#exclusive(id, async () => {
      const session = await this.#session(repository, id);
      await this.#discard(session);
    });
  }

  /** Removes sessions (and writers of any session) not written to for the expiry time; returns how many sessions. */
  async expire(now = Date.now()): Promise<number> {
    const before = now - this.options.expiryMs;
    const stale = (await this.options.uploads.olderThan(before)).filter((session) => !this.#queues.has(session.id));
    for (const session of stale) await this.#discard(session);
    await this.#releaseOrphans();
    await this.options.content.expireWriters(before);
    return stale.length;
  }

  /** Writers open here whose session is gone (finished, cancelled or expired by another process): let go of them. */
  async #releaseOrphans(): Promise<void> {
    for (const [id, writer] of [...this.#open]) {
      if (this.#queues.has(id) || (await this.options.uploads.get(id)) !== undefined) continue;
      if (this.#open.get(id) !== writer) continue;
      this.#open.delete(id);
      await writer.release?.();
    }
  }

  /** Lets go of the writers open in this process; their sessions can be continued by another. */
  async close(): Promise<void> {
    const writers = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(writers.map((writer) => writer.release?.()));
  }

  async #session(repository: string, id: string): Promise<UploadSession> {
    // A malformed id never gets here (#exclusive).
    const session = await this.options.uploads.get(id);
    if (!session || session.repository !== repository) throw unknownSession(id);
    if (session.updatedAt < Date.now() - this.options.expiryMs) {
      await this.#discard(session);
      throw new BlobUploadUnknownError(`upload ${id} has expired`);
    }
    return session;
  }

  /** The session's writer in this process, resumed when needed; the session then counts what it holds. */
  async #writer(session: UploadSession): Promise<ContentWriter> {
    const open = this.#open.get(session.id);
    if (open && open.written === session.offset) return open;
    this.#open.delete(session.id);
    await open?.release?.();
    const writer = await this.#resume(session);
    this.#open.set(session.id, writer);
    if (writer.written !== session.offset) await this.#record(session, writer.written);
    return writer;
  }

  async #resume(session: UploadSession): Promise<ContentWriter> {
    try {
      return await this.options.content.writer({ resumeId: session.writerId, resumable: true });
    } catch (error) {
      // A store error (S3 down) is the store's 503; anything else means the bytes are gone.
      if (error instanceof MirrorError && error.code === 'UNAVAILABLE') throw error;
      await this.options.uploads.delete(session.id);
      throw new BlobUploadUnknownError(`upload ${session.id} cannot be continued: its bytes are gone`);
    }
  }

  /** Writes a request body at the session's offset, then records the new offset, also when the body broke off. */
  async #receive(session: UploadSession, writer: ContentWriter, body: UploadBody, flushEarly = true): Promise<void> {
    const expected = expectedLength(body);
    if (body.range && body.range.start !== writer.written) {
      throw new UploadOutOfOrderError(`chunk ${body.range.start}-${body.range.end} does not start where the upload stands (${writer.written} bytes received)`, writer.written);
    }
    try {
      await writeBody(body.stream, writer, { flushEarly, ...(expected === undefined ? {} : { expected }), ...(this.options.pieces ? { pieces: this.options.pieces } : {}) });
    } finally {
      if (writer.written !== session.offset) await this.#record(session, writer.written);
    }
  }

  async #record(session: UploadSession, offset: number): Promise<void> {
    session.offset = offset;
    session.updatedAt = Date.now();
    await this.options.uploads.put(session);
  }

  /**
   * Ends a session. Its bytes go at once when its writer is open here; otherwise with the next
   * expiry run (`expireWriters`), rather than resuming (hashing) a writer only to delete it.
   */
  async #discard(session: UploadSession): Promise<void> {
    const writer = this.#open.get(session.id);
    this.#open.delete(session.id);
    await this.options.uploads.delete(session.id);
    await writer?.cancel();
  }

  /** One request per session at a time: in arrival order in this process, then holding the session's claim. */
  #exclusive<T>(id: string, work: (claim: SessionClaim) => Promise<T>): Promise<T> {
    if (!SESSION_ID.test(id)) return Promise.reject(unknownSession(id));
    const claimed = () => SessionClaim.hold(this.options.uploads, id, work);
    const previous = this.#queues.get(id) ?? Promise.resolve();
    const run = previous.then(claimed, claimed);
    const settled = run.then(() => undefined, () => undefined);
    this.#queues.set(id, settled);
    void settled.then(() => {
      if (this.#queues.get(id) === settled) this.#queues.delete(id);
    });
    return run;
  }
}

function unknownSession(id: string): BlobUploadUnknownError {
  return new BlobUploadUnknownError(`upload ${id.slice(0, 64)} is not known (finished, cancelled or expired)`);
}

/** The body length the headers promise: a Content-Range's, which Content-Length must agree with. */
function expectedLength(body: UploadBody): number | undefined {
  if (!body.range) return body.length;
  const length = body.range.end - body.range.start + 1;
  if (body.length !== undefined && body.length !== length) {
    throw new BlobUploadInvalidError(`Content-Length ${body.length} does not match Content-Range ${body.range.start}-${body.range.end}`);
  }
  return length;
}
