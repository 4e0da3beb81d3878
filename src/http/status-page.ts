/**
 * The status page at `GET /`: one self-contained HTML document (inline CSS and script, no
 * external assets, no framework) that polls `/api/status` every few seconds. Everything shown
 * that a client could influence (repository names) is inserted with textContent, never as HTML.
 */
export const STATUS_PAGE_REFRESH_MS = 3000;

export const STATUS_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>registry-mirror status</title>
<style>
  :root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ec; --accent: #2f6fde; --warn: #c2410c; --bg: #f7f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 1rem; padding: 1rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.15rem; margin: 0; }
  #updated { color: var(--muted); font-size: .85rem; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; padding: 1rem 1.5rem; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem; }
  h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 0 0 .6rem; }
  .big { font-size: 1.6rem; font-weight: 600; }
  .bar { height: 10px; background: var(--line); border-radius: 5px; overflow: hidden; margin: .4rem 0; }
  .bar > div { height: 100%; background: var(--accent); width: 0; transition: width .4s; }
  table { width: 100%; border-collapse: collapse; font-size: .9rem; }
  th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-weight: 500; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: var(--muted); }
  .blocked { color: var(--warn); font-weight: 600; }
  code { font-size: .85em; }
</style>
</head>
<body>
<header><h1>registry-mirror</h1><span id="updated">loading…</span><span id="error" class="blocked"></span></header>
<main>
  <section>
    <h2>Cache</h2>
    <div class="big" id="cache-used">–</div>
    <div class="bar"><div id="cache-bar"></div></div>
    <div class="muted"><span id="cache-blobs">–</span> blobs · <span id="cache-evictions">–</span> evictions · <span id="hosted-bytes">–</span> hosted (not evicted, outside the budget)</div>
  </section>
  <section>
    <h2>Hits</h2>
    <div class="big" id="hit-ratio">–</div>
    <div class="muted"><span id="hits">0</span> hits · <span id="misses">0</span> misses · <span id="joined">0</span> joined</div>
  </section>
  <section>
    <h2>Bytes saved</h2>
    <div class="big" id="bytes-saved">–</div>
    <div class="muted">served from cache; <span id="bytes-upstream">–</span> from upstreams</div>
  </section>
  <section>
    <h2>Downloads in flight</h2>
    <table><thead><tr><th>Blob</th><th class="num">Progress</th></tr></thead><tbody id="downloads"></tbody></table>
    <div class="muted" id="downloads-summary"></div>
  </section>
  <section>
    <h2>Upstream rate limits</h2>
    <table><thead><tr><th>Upstream</th><th class="num">Remaining</th><th class="num">Limit</th><th>State</th></tr></thead><tbody id="rate-limits"></tbody></table>
  </section>
  <section>
    <h2>Top repositories</h2>
    <table><thead><tr><th>Repository</th><th class="num">Pulls</th><th class="num">Hits</th><th class="num">Served</th></tr></thead><tbody id="top-repositories"></tbody></table>
  </section>
</main>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(n) {
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  }
  function percent(ratio) { return (ratio * 100).toFixed(1) + ' %'; }
  function row(cells) {
    const tr = document.createElement('tr');
    for (const [text, cls] of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }
  function fill(id, rows, empty, columns) {
    const body = $(id);
    body.replaceChildren(...(rows.length ? rows : [row([[empty, 'muted']])]));
    if (!rows.length) body.firstChild.firstChild.colSpan = columns;
  }
  function render(s) {
    $('cache-used').textContent = bytes(s.cache.bytes) + ' of ' + bytes(s.cache.maxBytes) + ' (' + percent(s.cache.usedRatio) + ')';
    $('cache-bar').style.width = Math.min(100, s.cache.usedRatio * 100) + '%';
    $('cache-blobs').textContent = s.cache.blobs;
    $('cache-evictions').textContent = s.cache.evictions;
    $('hosted-bytes').textContent = bytes(s.hosted ? s.hosted.bytes : 0);
    $('hit-ratio').textContent = s.requests.hitRatio === null ? '–' : percent(s.requests.hitRatio);
    $('hits').textContent = s.requests.hits;
    $('misses').textContent = s.requests.misses;
    $('joined').textContent = s.requests.joined;
    $('bytes-saved').textContent = bytes(s.bytes.saved);
    $('bytes-upstream').textContent = bytes(s.bytes.fromUpstream);
    fill('downloads', s.downloads.inFlight.map((d) => row([
      [d.digest.slice(0, 19) + '…'],
      [d.size ? bytes(d.bytesWritten) + ' / ' + bytes(d.size) + ' (' + percent(d.bytesWritten / d.size) + ')' : bytes(d.bytesWritten), 'num'],
    ])), 'none', 2);
    $('downloads-summary').textContent = s.downloads.queued ? s.downloads.queued + ' queued' : '';
    fill('rate-limits', s.rateLimits.map((r) => row([
      [r.upstream], [r.remaining === null ? '–' : String(r.remaining), 'num'],
      [r.limit === null ? '–' : r.limit + (r.windowSeconds ? ' / ' + Math.round(r.windowSeconds / 3600) + ' h' : ''), 'num'],
      r.blockedForSeconds > 0 ? ['429: paused ' + r.blockedForSeconds + ' s', 'blocked'] : ['ok'],
    ])), 'no rate-limit headers seen', 4);
    fill('top-repositories', s.topRepositories.map((r) => row([
      [r.repository], [String(r.pulls), 'num'], [String(r.hits), 'num'], [bytes(r.bytesServed), 'num'],
    ])), 'no pulls yet', 4);
    $('updated').textContent = 'updated ' + new Date(s.now).toLocaleTimeString() + (s.offline ? ' · offline' : '');
  }
  async function refresh() {
    try {
      const response = await fetch('api/status', { cache: 'no-store' });
      if (!response.ok) throw new Error('status ' + response.status);
      render(await response.json());
      $('error').textContent = '';
    } catch (error) {
      $('error').textContent = 'cannot reach the mirror: ' + error.message;
    } finally {
      setTimeout(refresh, ${STATUS_PAGE_REFRESH_MS});
    }
  }
  refresh();
})();
</script>
</body>
</html>
`;
