/**
 * What a push or delete tells the notification endpoints (hosted/notifications.ts): the route
 * knows the request, the services know what changed. Publishing only queues, so a push never
 * waits for, or fails because of, a listener.
 */
import type { EventInput } from './notification-events.js';
import { contentUrl } from './notification-events.js';

/** The request behind a change, as the events report it. */
export interface PushRequest {
  /** The authenticated user, if any. */
  user?: string;
  request: EventInput['request'];
  /** scheme://host the client reached this registry at (for the events' `url`). */
  externalBase: string;
}

export interface EventSink {
  publish(event: EventInput): void;
}

export const NO_EVENTS: EventSink = { publish: () => {} };

type Change = Pick<EventInput, 'action' | 'repository' | 'digest' | 'mediaType' | 'size' | 'tag' | 'fromRepository'>;

export function pushEvent(change: Change, kind: 'blobs' | 'manifests', by: PushRequest): EventInput {
  const event: EventInput = { ...change, request: by.request, url: contentUrl(by.externalBase, change.repository, kind, change.digest) };
  if (by.user !== undefined) event.user = by.user;
  return event;
}
