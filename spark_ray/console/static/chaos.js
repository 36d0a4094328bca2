/* Chaos (/chaos): the newest canary table (GET /api/chaos) and every evidence bundle
 * (GET /api/evidence) with its INDEX and a Verify button (GET /api/evidence/verify?bundle=ID).
 * Loaded on open and on Reload; bundles already shown keep their nodes (open INDEX, results). */
'use strict';

(() => {
  const bundlesRoot = document.getElementById('bundles');
  const bundles = new Map(); // id -> element

  /* "alert fired at" -> "alert_fired_at" */
  function colKey(c) { return String(c).trim().toLowerCase().replace(/\s+/g, '_'); }

  function cellValue(row, col, i) {
    if (Array.isArray(row)) return row[i];
    const keys = [colKey(col), String(col), colKey(col).replace(/[^a-z0-9_]/g, '_'), colKey(col).replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '')];
    for (const k of keys) if (Object.prototype.hasOwnProperty.call(row, k)) return row[k];
    return undefined;
  }

  function show(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return fmtNum(v, 3);
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  async function loadChaos() {
    let doc;
    try { doc = await api('/api/chaos'); } catch (e) { return; }
    setText(document.getElementById('chaos-run'), doc.run || '—');
    const table = doc.table || {};
    const cols = table.columns || [];
    const rows = table.rows || [];
    setHTML($('#canary thead'), '<tr>' + cols.map((c) => '<th data-column="' + esc(colKey(c)) + '">' + esc(c) + '</th>').join('') + '</tr>');
    setHTML($('#canary tbody'), rows.length ? rows.map((r, ri) => '<tr data-testid="canary-row-' + ri + '">' + cols.map((c, i) => {
      const v = cellValue(r, c, i);
      const text = show(v);
      const cls = typeof v === 'number' ? ' class="num"' : '';
      const sc = stateClass(text);
      return '<td data-field="' + esc(colKey(c)) + '"' + cls + '>' + (sc && typeof v === 'string' ? badge(text, sc) : esc(text)) + '</td>';
    }).join('') + '</tr>').join('') : '<tr><td colspan="' + Math.max(1, cols.length) + '" class="empty">no canary table</td></tr>');
  }

  function bundleEl(b) {
    const el = document.createElement('div');
    el.className = 'card';
    el.setAttribute('data-testid', 'bundle-' + b.id);
    el.innerHTML = '<div class="row"><b class="mono"></b><span class="muted small" data-part="files"></span>' +
      '<button type="button" data-action="verify">Verify</button><span class="verify-result"></span></div>' +
      '<details><summary>INDEX</summary><pre class="index" data-testid="index-' + esc(b.id) + '"></pre></details>';
    el.querySelector('b').textContent = b.id;
    const btn = el.querySelector('button');
    btn.dataset.bundle = b.id;
    btn.setAttribute('data-testid', 'verify-' + b.id);
    el.querySelector('.verify-result').setAttribute('data-testid', 'verify-result-' + b.id);
    bundles.set(String(b.id), el);
    return el;
  }

  async function loadEvidence() {
    let doc;
    try { doc = await api('/api/evidence'); } catch (e) { return; }
    const list = doc.bundles || [];
    const seen = new Set();
    let prev = null;
    for (const b of list) {
      const id = String(b.id);
      seen.add(id);
      const el = bundles.get(id) || bundleEl(b);
      const want = prev ? prev.nextSibling : bundlesRoot.firstChild;
      if (want !== el) bundlesRoot.insertBefore(el, want);
      prev = el;
      setText(el.querySelector('[data-part="files"]'), (b.files !== undefined ? b.files + ' files' : ''));
      setText(el.querySelector('pre.index'), b.index || '(no INDEX)');
    }
    for (const [id, el] of bundles) if (!seen.has(id)) { el.remove(); bundles.delete(id); }
    const empty = bundlesRoot.querySelector(':scope > .empty');
    if (!list.length && !empty) bundlesRoot.insertAdjacentHTML('beforeend', '<p class="empty">no evidence bundles</p>');
    if (list.length && empty) empty.remove();
  }

  bundlesRoot.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button[data-action="verify"]');
    if (!btn || btn.disabled) return;
    const id = btn.dataset.bundle;
    const out = btn.parentElement.querySelector('.verify-result');
    out.className = 'verify-result';
    out.textContent = 'verifying…';
    btn.disabled = true;
    try {
      const r = await api('/api/evidence/verify?bundle=' + encodeURIComponent(id));
      if (r.ok) {
        out.className = 'verify-result ok';
        out.textContent = 'OK' + (r.checked !== undefined ? ' (' + r.checked + ' files checked)' : '');
      } else {
        const parts = [];
        for (const k of ['tampered', 'missing', 'extra']) {
          if ((r[k] || []).length) parts.push(k + ': ' + r[k].join(', '));
        }
        out.className = 'verify-result bad';
        out.textContent = 'FAILED ' + (parts.join('; ') || '(no details)');
      }
    } catch (e) {
      out.className = 'verify-result bad';
      out.textContent = 'error: ' + (e && e.message ? e.message : e);
    } finally {
      btn.disabled = false;
    }
  });

  async function loadAll() {
    await Promise.all([loadChaos(), loadEvidence()]);
    setUpdated();
  }

  document.getElementById('chaos-reload').addEventListener('click', loadAll);
  loadAll();
})();
