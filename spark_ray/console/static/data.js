/* Data (/data): lake coverage and quality per exchange/symbol/interval from GET /api/data
 * (reloaded every 30 s). Gaps are listed compactly: the first few, the rest behind <details>. */
'use strict';

(() => {
  const GAPS_INLINE = 3;

  /* ["2024-01","2024-02","2024-03","2024-05"] -> "2024-01…2024-03, 2024-05" */
  function monthsText(months) {
    const list = (months || []).map(String).slice().sort();
    if (!list.length) return '—';
    const idx = (m) => { const [y, mo] = m.split('-').map(Number); return y * 12 + (mo - 1); };
    const runs = [];
    let start = list[0];
    let prev = list[0];
    for (let i = 1; i <= list.length; i++) {
      const m = list[i];
      if (m !== undefined && /^\d{4}-\d{2}$/.test(m) && /^\d{4}-\d{2}$/.test(prev) && idx(m) === idx(prev) + 1) { prev = m; continue; }
      runs.push(start === prev ? start : start + '…' + prev);
      start = m;
      prev = m;
    }
    return runs.join(', ');
  }

  function coverageRows(cov) {
    if (!cov || !cov.length) return '<tr><td colspan="8" class="empty">no data in the lake</td></tr>';
    return cov.map((c) => '<tr data-testid="coverage-' + esc([c.dataset, c.exchange, c.symbol, c.interval].filter((x) => x).join('-')) + '">' +
      '<td>' + esc(c.dataset) + '</td><td>' + esc(c.exchange) + '</td><td>' + esc(c.symbol) + '</td><td>' + esc(c.interval) + '</td>' +
      '<td class="small" title="' + esc((c.months || []).join(' ')) + '">' + esc(monthsText(c.months)) +
        ' <span class="muted">(' + (c.months || []).length + ')</span></td>' +
      '<td class="num">' + esc(fmtNum(c.rows)) + '</td><td class="small">' + esc(fmtTime(c.first)) + '</td>' +
      '<td class="small">' + esc(fmtTime(c.last)) + '</td></tr>').join('');
  }

  function gapText(g) {
    return fmtTime(g.from) + ' → ' + fmtTime(g.to) + (g.bars !== undefined ? ' (' + g.bars + ' bars)' : '');
  }

  function gapsCell(gaps) {
    if (!gaps || !gaps.length) return '<span class="muted">none</span>';
    const head = gaps.slice(0, GAPS_INLINE).map((g) => '<div>' + esc(gapText(g)) + '</div>').join('');
    if (gaps.length <= GAPS_INLINE) return head;
    return head + '<details><summary>' + (gaps.length - GAPS_INLINE) + ' more</summary>' +
      gaps.slice(GAPS_INLINE).map((g) => '<div>' + esc(gapText(g)) + '</div>').join('') + '</details>';
  }

  function qualityRows(q) {
    if (!q || !q.length) return '<tr><td colspan="7" class="empty">no quality results</td></tr>';
    return q.map((r) => '<tr data-testid="quality-' + esc([r.exchange, r.symbol, r.interval].filter((x) => x).join('-')) + '">' +
      '<td>' + esc(r.exchange) + '</td><td>' + esc(r.symbol) + '</td><td>' + esc(r.interval) + '</td>' +
      '<td>' + okBadge(!!r.ok, 'OK', 'FAIL') + '</td><td class="num">' + esc(fmtNum(r.missing_bars)) + '</td>' +
      '<td class="num">' + (r.gaps || []).length + '</td><td class="small">' + gapsCell(r.gaps) + '</td></tr>').join('');
  }

  async function refresh() {
    let doc;
    try { doc = await api('/api/data'); } catch (e) { return; }
    setText(document.getElementById('store'), doc.store || '');
    setHTML($('#coverage tbody'), coverageRows(doc.coverage));
    setHTML($('#quality tbody'), qualityRows(doc.quality));
    setUpdated();
  }

  every(30000, refresh);
})();
