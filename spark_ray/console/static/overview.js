/* Overview (/): services, nodes, firing alerts; polls GET /api/health every 2 s. */
'use strict';

(() => {
  function serviceRows(services) {
    if (!services || !services.length) return '<tr><td colspan="4" class="empty">no services reported</td></tr>';
    return services.map((s) =>
      '<tr data-testid="service-' + esc(s.name) + '" data-ok="' + (s.ok ? 'true' : 'false') + '">' +
      '<td>' + esc(s.name) + '</td>' +
      '<td>' + esc(s.kind) + '</td>' +
      '<td>' + okBadge(!!s.ok, 'OK', 'FAIL') + '</td>' +
      '<td>' + esc(s.detail) + '</td></tr>').join('');
  }

  function usedTotal(res, avail, key, fmt) {
    const total = res ? res[key] : undefined;
    if (typeof total !== 'number') return '—';
    const free = avail ? avail[key] : undefined;
    if (typeof free !== 'number') return '? / ' + fmt(total);
    return fmt(total - free) + ' / ' + fmt(total);
  }

  function nodeRows(nodes) {
    if (!nodes || !nodes.length) return '<tr><td colspan="6" class="empty">no nodes reported</td></tr>';
    return nodes.map((n) => {
      const res = n.resources || {};
      const avail = n.available || {};
      const other = Object.keys(res).filter((k) => k !== 'CPU' && k !== 'memory' && !k.startsWith('node:'))
        .map((k) => k + ' ' + fmtNum(avail[k] !== undefined ? res[k] - avail[k] : undefined) + '/' + fmtNum(res[k]))
        .join(', ');
      return '<tr data-testid="node-' + esc(n.node_id || n.address) + '">' +
        '<td class="mono">' + esc(n.address) + '</td>' +
        '<td class="mono" title="' + esc(n.node_id) + '">' + esc(String(n.node_id || '').slice(0, 12)) + '</td>' +
        '<td>' + okBadge(!!n.alive, 'alive', 'dead') + '</td>' +
        '<td class="num">' + esc(usedTotal(res, avail, 'CPU', (v) => fmtNum(v, 2))) + '</td>' +
        '<td class="num">' + esc(usedTotal(res, avail, 'memory', fmtBytes)) + '</td>' +
        '<td class="small">' + esc(other) + '</td></tr>';
    }).join('');
  }

  function alertItems(alerts) {
    if (!alerts || !alerts.length) return '<li class="empty">no alerts firing</li>';
    return alerts.map((a) =>
      '<li data-testid="firing-' + esc(a.name) + '">' + badge(a.severity || 'unknown') + ' <b>' + esc(a.name) + '</b> ' +
      badge(a.state || '') + ' <span class="muted small">since ' + esc(fmtTime(a.since)) + '</span> ' +
      esc(a.summary || '') + '</li>').join('');
  }

  async function refresh() {
    let doc;
    try { doc = await api('/api/health'); } catch (e) { return; }
    setHTML($('#services tbody'), serviceRows(doc.services));
    setHTML($('#nodes tbody'), nodeRows(doc.nodes));
    setHTML($('#firing'), alertItems(doc.alerts));
    setUpdated(doc.at);
  }

  every(2000, refresh);
})();
