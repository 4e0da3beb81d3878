/**
 * Blob writes to hosted repositories (distribution-spec "Push", "Content Management"): upload
 * sessions (upload-sessions.ts) whose verified blobs join the repository, the single-POST
 * upload, cross-repository mounts (mount-sources.ts), and blob deletion, which unlinks the blob
 * from the repository; its bytes go with the next garbage collection if nothing else holds them
 * (hosted/garbage-collect.ts).
 */
import type { Digest } from '../domain/digest.js';
import { BlobUnknownError } from '../domain/errors.js';
import { repositoryKey, type HostedTarget } from '../domain/target.js';
import type { UploadSession } from '../metadata/metadata-store.js';
import type { HostedContent } from './hosted-content.js';
import type { MountSources } from './mount-sources.js';
import { pushEvent, type EventSink, type PushRequest } from './push-events.js';
import type { UploadBody, UploadSessions } from './upload-sessions.js';

export interface BlobPushesOptions {
  hosted: HostedContent;
  uploads: UploadSessions;
  mounts: MountSources;
  events: EventSink;
}

export type MountOutcome = { mounted: true; size: number } | { mounted: false; session: UploadSession };

export class BlobPushes {
  constructor(private readonly options: BlobPushesOptions) {}

  startUpload(target: HostedTarget): Promise<UploadSession> {
    return this.options.uploads.start(target.repository);
  }

  uploadStatus(target: HostedTarget, id: string): Promise<UploadSession> {
    return this.options.uploads.status(target.repository, id);
  }

  appendUpload(target: HostedTarget, id: string, body: UploadBody): Promise<UploadSession> {
    return this.options.uploads.append(target.repository, id, body);
  }

  cancelUpload(target: HostedTarget, id: string): Promise<void> {
    return this.options.uploads.cancel(target.repository, id);
  }

  /** Closes an upload; the verified blob joins the repository. */
  async finishUpload(target: HostedTarget, id: string, digest: Digest, body: UploadBody, by: PushRequest): Promise<{ digest: Digest; size: number }> {
    const stored = await this.options.uploads.finish(target.repository, id, digest, body);
    await this.options.hosted.add(target.repository, digest.value, stored.size);
    this.options.events.publish(pushEvent({ action: 'push', repository: target.repository, digest: digest.value, size: stored.size, mediaType: 'application/octet-stream' }, 'blobs', by));
    return stored;
  }

  /** `POST ?digest=` with the whole blob: a session opened and closed in one request, and gone however it ends. */
  async putBlob(target: HostedTarget, digest: Digest, body: UploadBody, by: PushRequest): Promise<{ digest: Digest; size: number }> {
    const session = await this.startUpload(target);
    try {
      return await this.finishUpload(target, session.id, digest, body, by);
    } catch (error) {
      await this.cancelUpload(target, session.id).catch(() => undefined);
      throw error;
    }
  }

  /** Mounts the blob from `from` when allowed and held there; otherwise opens a session for an upload. */
  async mount(target: HostedTarget, digest: Digest, from: string, by: PushRequest): Promise<MountOutcome> {
    const source = await this.options.mounts.mountable(from, digest, by.user);
    if (!source) return { mounted: false, session: await this.startUpload(target) };
    await this.options.hosted.add(target.repository, digest.value, source.size);
    const change = { action: 'mount' as const, repository: target.repository, digest: digest.value, size: source.size, fromRepository: repositoryKey(source.from) };
    this.options.events.publish(pushEvent(change, 'blobs', by));
    return { mounted: true, size: source.size };
  }

  /** Unlinks the blob from the repository (202); 404 BLOB_UNKNOWN when it holds no such blob. */
  async deleteBlob(target: HostedTarget, digest: Digest, by: PushRequest): Promise<void> {
    const { hosted } = this.options;
    const manifest = await hosted.stores.metadata.manifests.get(digest.value);
    if (manifest || (await hosted.blobSize(target.repository, digest)) === undefined) throw new BlobUnknownError(`blob ${digest.value} is not in ${target.repository}`);
    await hosted.stores.metadata.links.remove(target.repository, digest.value);
    this.options.events.publish(pushEvent({ action: 'delete', repository: target.repository, digest: digest.value }, 'blobs', by));
  }
}
