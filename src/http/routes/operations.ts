/**
 * The operational endpoints beside the registry API: `/metrics` (Prometheus text format),
 * `/readyz`, `/api/status` (JSON) and the status page at `/`. `/healthz` lives in app.ts.
 */
import type { Hono } from 'hono';
import type { ReadinessReport } from '../../health/readiness.js';
import type { MirrorMetrics } from '../../metrics/mirror-metrics.js';
import type { MirrorStatus, RepositoryVisibility } from '../../metrics/mirror-status.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from '../status-page.js';

export interface OperationsDependencies {
  metrics: MirrorMetrics;
  readiness: { check(): Promise<ReadinessReport> };
  status: (visible?: RepositoryVisibility) => MirrorStatus;
  /** Under access rules: the repositories a client may see named in the status (the ones it may pull). */
  visibleTo?: (user: string | undefined) => RepositoryVisibility;
}

const NO_STORE = { 'Cache-Control': 'no-store' };

export function mountOperations(app: Hono, { metrics, readiness, status, visibleTo }: OperationsDependencies): void {
  app.get('/metrics', async function metricsRoute(c) {
    return c.body(await metrics.render(), 200, { ...NO_STORE, 'Content-Type': metrics.contentType });
  });

  app.get('/readyz', async function readyz(c) {
    const report = await readiness.check();
    return c.json(report, report.ready ? 200 : 503, NO_STORE);
  });

  app.get('/api/status', function apiStatus(c) {
    return c.json(status(visibleTo?.(c.get('clientUser'))), 200, NO_STORE);
  });

  app.get('/', function statusPage(c) {
    return c.html(STATUS_PAGE_HTML, 200, { ...NO_STORE, 'Content-Security-Policy': STATUS_PAGE_CSP });
  });
}
