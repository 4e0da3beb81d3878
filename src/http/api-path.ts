/**
 * Splits a distribution API path into repository name, endpoint and reference
 * (distribution-spec "Endpoints"). The name may itself contain `/blobs/` or `/manifests/`
 * components, so the endpoint is taken from the end of the path.
 */
import { RouteUnknownError } from '../domain/errors.js';

/** `uploads`: /blobs/uploads/ (POST starts a session); `upload`: /blobs/uploads/<session id>. */
export type Endpoint = 'manifests' | 'blobs' | 'tags' | 'referrers' | 'uploads' | 'upload';

export interface ApiPath {
  name: string;
  endpoint: Endpoint;
  reference: string;
}

const ENDPOINT_PATTERN = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/;
const TAGS_PATTERN = /^\/v2\/(.+)\/tags\/list$/;
const UPLOADS_PATTERN = /^\/v2\/(.+)\/blobs\/uploads\/?$/;
const UPLOAD_PATTERN = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/;

export function parseApiPath(pathname: string): ApiPath {
  const upload = UPLOADS_PATTERN.exec(pathname);
  if (upload) return { name: upload[1]!, endpoint: 'uploads', reference: '' };
  const session = UPLOAD_PATTERN.exec(pathname);
  if (session) return { name: session[1]!, endpoint: 'upload', reference: session[2]! };
  const tags = TAGS_PATTERN.exec(pathname);
  if (tags) return { name: tags[1]!, endpoint: 'tags', reference: 'list' };
  const match = ENDPOINT_PATTERN.exec(pathname);
  if (!match) throw new RouteUnknownError(`no registry API endpoint at ${pathname.slice(0, 200)}`);
  return { name: match[1]!, endpoint: match[2] as Endpoint, reference: match[3]! };
}
