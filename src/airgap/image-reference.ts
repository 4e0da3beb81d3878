/**
 * Image references as people type them (`alpine:3.20`, `gcr.io/distroless/static:nonroot`,
 * `name@sha256:...`, `name:tag@sha256:...`), parsed with docker's normalisation rules
 * (distribution/reference "normalize"): the first path component names a registry only when it
 * contains "." or ":" or is "localhost"; a missing tag and digest means `latest`; Docker Hub's
 * single-component names live under `library/`; index.docker.io is docker.io.
 *
 * Which configured upstream serves the reference is the router's decision (the same rules as a
 * request path): a reference without a registry goes to the default upstream.
 */
import { parseDigest, type Digest } from '../domain/digest.js';
import { NameInvalidError } from '../domain/errors.js';
import { assertTag } from '../domain/reference.js';
import { isRegistryHost, looksLikeRegistryHost, normalizeRegistryHost } from '../domain/registry-host.js';
import type { ProxiedTarget } from '../domain/target.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';

export interface ImageReference {
  /** The registry as written (lower-cased), or undefined when the reference names none. */
  registry: string | undefined;
  /** The name as written after the registry, e.g. `alpine` or `distroless/static`. */
  name: string;
  tag: string | undefined;
  digest: Digest | undefined;
}

/** A reference routed to a configured upstream: what warm and export work with. */
export interface ResolvedImage extends ProxiedTarget {
  tag: string | undefined;
  digest: Digest | undefined;
}

const DEFAULT_TAG = 'latest';
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_LEGACY = 'index.docker.io';

export function parseImageReference(text: string): ImageReference {
  const input = text.trim();
  const at = input.indexOf('@');
  const digest = at >= 0 ? parseDigest(input.slice(at + 1)) : undefined;
  const named = at >= 0 ? input.slice(0, at) : input;
  const colon = named.lastIndexOf(':');
  const hasTag = colon > named.lastIndexOf('/');
  const tag = hasTag ? assertTag(named.slice(colon + 1)) : undefined;
  const path = hasTag ? named.slice(0, colon) : named;
  if (!path) throw new NameInvalidError(`image reference ${JSON.stringify(text)} names no repository`);
  const slash = path.indexOf('/');
  const first = slash > 0 ? path.slice(0, slash) : '';
  if (first && looksLikeRegistryHost(first)) {
    if (!isRegistryHost(first)) throw new NameInvalidError(`${JSON.stringify(first)} in ${JSON.stringify(text)} is not a registry host name`);
    const registry = normalizeRegistryHost(first) === DOCKER_HUB_LEGACY ? DOCKER_HUB : normalizeRegistryHost(first);
    return { registry, name: path.slice(slash + 1), tag: tag ?? (digest ? undefined : DEFAULT_TAG), digest };
  }
  return { registry: undefined, name: path, tag: tag ?? (digest ? undefined : DEFAULT_TAG), digest };
}

/** Routes a reference as the HTTP API would route `/v2/<registry>/<name>/...`. */
export function resolveImage(reference: ImageReference, router: UpstreamRouter): ResolvedImage {
  const routedName = reference.registry ? `${reference.registry}/${reference.name}` : reference.name;
  return { ...router.route(routedName, undefined), tag: reference.tag, digest: reference.digest };
}

/** `docker.io/library/alpine:3.20`, `gcr.io/distroless/static@sha256:...`: the full reference. */
export function formatImage(image: ResolvedImage): string {
  const base = `${image.upstream}/${image.repository}`;
  if (image.tag !== undefined) return image.digest ? `${base}:${image.tag}@${image.digest.value}` : `${base}:${image.tag}`;
  return `${base}@${image.digest!.value}`;
}

/** Reads a list of references: one per line, `#` starts a comment, blank lines are skipped. */
export function parseImageList(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.length > 0);
}
