/**
 * Registry events in distribution's envelope format (notifications/event.go, docs "Work with
 * notifications"), so listeners written for `registry:2` work unchanged:
 *
 *   POST <endpoint url>
 *   Content-Type: application/vnd.docker.distribution.events.v1+json
 *   {"events": [{"id", "timestamp", "action", "target": {"mediaType", "size", "digest", "length",
 *     "repository", "url", "tag"}, "request": {"id", "addr", "host", "method", "useragent"},
 *     "actor": {"name"}, "source": {"addr", "instanceID"}}]}
 *
 * Empty fields are left out, as Go's `omitempty` does; `length` repeats `size` "for backwards
 * compatibility" (distribution keeps both).
 */
import { randomUUID } from 'node:crypto';

/** distribution 2.x (`registry:2`); distribution 3 moved to `...events.v2+json` with the same fields. */
export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

export type EventAction = 'push' | 'mount' | 'delete';

export interface EventTarget {
  mediaType?: string;
  size?: number;
  digest: string;
  length?: number;
  repository: string;
  /** Where a mounted blob came from (action "mount"). */
  fromRepository?: string;
  url?: string;
  tag?: string;
}

export interface EventRequest {
  id: string;
  addr?: string;
  host?: string;
  method: string;
  useragent: string;
}

export interface RegistryEvent {
  id: string;
  /** RFC 3339, as Go's time.Time marshals. */
  timestamp: string;
  action: EventAction;
  target: EventTarget;
  request: EventRequest;
  actor: { name?: string };
  source: { addr?: string; instanceID?: string };
}

/** What a route knows when something was pushed, mounted or deleted. */
export interface EventInput {
  action: EventAction;
  repository: string;
  digest: string;
  mediaType?: string;
  size?: number;
  tag?: string;
  fromRepository?: string;
  /** A URL the content can be pulled from (the request's external base + /v2/...). */
  url?: string;
  request: { id: string; addr?: string; host?: string; method: string; userAgent?: string };
  /** The authenticated user, if any. */
  user?: string;
}

export interface EventSource {
  /** host:port of this instance. */
  addr?: string;
  /** Changes with every start. */
  instanceID?: string;
}

export function registryEvent(input: EventInput, source: EventSource, now: Date = new Date()): RegistryEvent {
  const target: EventTarget = compact({
    mediaType: input.mediaType,
    size: input.size,
    digest: input.digest,
    length: input.size,
    repository: input.repository,
    fromRepository: input.fromRepository,
    url: input.url,
    tag: input.tag,
  });
  const { userAgent, ...request } = input.request;
  return {
    id: randomUUID(),
    timestamp: now.toISOString(),
    action: input.action,
    target,
    request: { ...compact(request), useragent: userAgent ?? '' },
    actor: compact({ name: input.user }),
    source: compact({ ...source }),
  };
}

export function envelope(events: readonly RegistryEvent[]): string {
  return JSON.stringify({ events });
}

/** `pull URL` of pushed content, as distribution's URL builder makes it. */
export function contentUrl(externalBase: string, repository: string, kind: 'blobs' | 'manifests', reference: string): string {
  return `${externalBase.replace(/\/+$/, '')}/v2/${repository}/${kind}/${reference}`;
}

/** Drops undefined and empty-string fields (Go `omitempty`). */
function compact<T extends object>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined && value !== '')) as T;
}
