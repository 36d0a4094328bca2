/* Alerts (/alerts): alerts from GET /api/alerts (polled every 5 s) with Silence
 * (POST /api/alerts/silence) and Acknowledge (POST /api/alerts/ack) buttons. */
'use strict';

(() => {
  const body = $('#alerts tbody');

  function ackText(a) {
    const v = a.acknowledged;
    if (v === null || v === undefined || v === false) return '';
    if (v === true) return 'yes';
    if (typeof v === 'object') {
      const who = v.who || v.by || v.acknowledged_by;
      const at = v.at || v.time || v.acknowledged_at;
      return 'by ' + (who || '?') + (at ? ' at ' + fmtTime(at) : '');
    }
    return String(v);
  }

  function silencedText(a) {
    const v = a.silenced;
    if (!v) return '';
    if (v === true) return 'silenced';
    if (typeof v === 'object') return 'until ' + fmtTime(v.until || v.ends_at || v.endsAt || '?');
    return String(v);
  }

  function rows(alerts) {
    if (!alerts || !alerts.length) return '<tr><td colspan="9" class="empty">no alerts</td></tr>';
    return alerts.map((a) => {
      const n = esc(a.name);
      const sil = silencedText(a);
      const ack = ackText(a);
      return '<tr data-testid="alert-' + n + '" data-silenced="' + (a.silenced ? 'true' : 'false') +
        '" data-acknowledged="' + (ack ? 'true' : 'false') + '" data-fingerprint="' + esc(a.fingerprint) + '">' +
        '<td><b>' + n + '</b></td><td>' + badge(a.severity || '') + '</td><td>' + badge(a.state || '') + '</td>' +
        '<td class="small">' + esc(fmtTime(a.since)) + '</td><td>' + esc(a.summary) + '</td>' +
        '<td class="small mono">' + esc(fmtParams(a.labels)) + '</td>' +
        '<td data-testid="silenced-' + n + '">' + (sil ? badge(sil, 'info') : '<span class="muted">no</span>') + '</td>' +
        '<td data-testid="acknowledged-' + n + '">' + (ack ? badge('ack ' + ack, 'info') : '<span class="muted">no</span>') + '</td>' +
        '<td style="white-space:nowrap"><button type="button" data-action="silence" data-alert="' + n + '" data-testid="silence-' + n + '">Silence</button> ' +
        '<button type="button" data-action="ack" data-alert="' + n + '" data-testid="ack-' + n + '">Acknowledge</button></td></tr>';
    }).join('');
  }

  async function refresh() {
    let doc;
    try { doc = await api('/api/alerts'); } catch (e) { return; }
    setText(document.getElementById('alerts-source'), (doc.source || '?') + (doc.url ? ' ' + doc.url : ''));
    setHTML(body, rows(doc.alerts));
    setUpdated();
  }

  body.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button[data-action]');
    if (!btn || btn.disabled) return;
    const payload = { alert: btn.dataset.alert };
    if (btn.dataset.action === 'silence') {
      const m = parseInt(document.getElementById('silence-minutes').value, 10);
      payload.minutes = Number.isFinite(m) && m > 0 ? m : 60;
    }
    btn.disabled = true;
    try {
      await post('/api/alerts/' + btn.dataset.action, payload);
      await refresh();
    } finally {
      if (btn.isConnected) btn.disabled = false;
    }
  });

  every(5000, refresh);
})();
