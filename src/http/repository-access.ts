/**
 * The access check of a registry API request (issue 14 "Access"): which action the method and
 * endpoint mean, and whether the client may take it on the repository (hosted/access-rules.ts).
 * Reads are `pull`; uploads, mounts and manifest pushes are `push`; deleting a manifest, tag or
 * blob is `delete`. A refusal is 403 DENIED: a client without credentials never gets this far
 * when `auth.htpasswd` is set (middleware/client-auth.ts answers 401 first).
 */
import type { Context } from 'hono';
import { DeniedError } from '../domain/errors.js';
import { repositoryKey, type RepositoryTarget } from '../domain/target.js';
import { allowed, type AccessAction, type AccessPolicy } from '../hosted/access-rules.js';
import type { Endpoint } from './api-path.js';
import { externalBase } from './external-base.js';
import { clientAddress } from './client-address.js';
import type { PushRequest } from '../hosted/push-events.js';
import { randomUUID } from 'node:crypto';

export function actionOf(endpoint: Endpoint, method: string): AccessAction {
  if (method === 'GET' || method === 'HEAD') return endpoint === 'upload' ? 'push' : 'pull';
  if (method === 'DELETE' && (endpoint === 'manifests' || endpoint === 'blobs')) return 'delete';
  return 'push';
}

export function requireAccess(policy: AccessPolicy, user: string | undefined, target: RepositoryTarget, action: AccessAction): void {
  if (allowed(user, target, action, policy)) return;
  const key = repositoryKey(target);
  if (!policy.authentication && action === 'push') {
    throw new DeniedError(`pushes to ${key} need client authentication (auth.htpasswd), or hosted.allowAnonymousPush for a lab`);
  }
  if (!policy.authentication) throw new DeniedError(`deleting from ${key} needs client authentication (auth.htpasswd)`);
  throw new DeniedError(`${user ?? 'this client'} may not ${action} ${key} (auth.access)`);
}

/** Who pushes, from where, as the notification events report it. */
export function pushRequestOf(c: Context, trustForwardedHeaders: boolean): PushRequest {
  const userAgent = c.req.header('user-agent');
  const request: PushRequest['request'] = { id: c.get('requestScope')?.id ?? randomUUID(), addr: clientAddress(c), host: new URL(c.req.url).host, method: c.req.method };
  if (userAgent !== undefined) request.userAgent = userAgent;
  const user = c.get('clientUser');
  return { request, externalBase: externalBase(c, trustForwardedHeaders), ...(user === undefined ? {} : { user }) };
}
