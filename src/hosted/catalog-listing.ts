/**
 * `GET /v2/_catalog` (distribution-spec "Listing Repositories", as distribution serves it): the
 * repositories this registry knows, in code point order, `n` at a time after `last`: hosted
 * repositories by name (`team/app`) and cached ones under their registry prefix
 * (`docker.io/library/alpine`), the name a client pulls them by through the path prefix. Only
 * repositories the client may pull are listed, so the catalog never names what it could not
 * read: the access rules decide (hosted/access-rules.ts), and anonymous clients are not shown
 * repositories of upstreams the mirror holds credentials for (their content may be private).
 */
import type { RepositoryTarget } from '../domain/target.js';
import type { PageRequest, RepositoryCatalog } from '../metadata/metadata-store.js';

export interface CatalogListingOptions {
  catalog: Pick<RepositoryCatalog, 'list'>;
  /** The repository a catalog key stands for (upstream/upstream-router.ts `targetOfKey`). */
  targetOf(key: string): RepositoryTarget;
  /** Whether `user` (undefined: anonymous) may see `target` listed. */
  visible(user: string | undefined, target: RepositoryTarget): boolean;
}

export interface CatalogPage {
  repositories: string[];
  /** More follow after this name (the Link header). */
  nextLast?: string;
}

/** Entries per page when the client names no `n`, and the most a page holds. */
export const MAX_CATALOG_PAGE = 1000;

export async function listCatalog(options: CatalogListingOptions, user: string | undefined, page: PageRequest): Promise<CatalogPage> {
  const wanted = Math.min(page.n ?? MAX_CATALOG_PAGE, MAX_CATALOG_PAGE);
  if (wanted === 0) return { repositories: [] };
  const shown: string[] = [];
  let last = page.last;
  // One more than wanted tells whether a next page exists; hidden names are skipped batch by batch.
  for (;;) {
    const batch = await options.catalog.list({ n: wanted + 1, ...(last === undefined ? {} : { last }) });
    for (const key of batch) if (options.visible(user, options.targetOf(key))) shown.push(key);
    if (shown.length > wanted) return { repositories: shown.slice(0, wanted), nextLast: shown[wanted - 1]! };
    if (batch.length < wanted + 1) return { repositories: shown };
    last = batch.at(-1)!;
  }
}
