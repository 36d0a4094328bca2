/* Streams (/streams): one table per exchange, one row per symbol, updated in place.
 * Live from the server-sent events of /api/streams/live (each message's data is the /api/streams
 * document); when the event stream errors, polls /api/streams every 2 s and tries the live stream
 * again every 30 s. Rows and cells are created once and then only their text changes; rows of
 * symbols (and tables of exchanges) that leave the document are removed, so nothing grows. */
'use strict';

(() => {
  const FIELDS = [
    // [field, header, numeric]
    ['status', 'status', false],
    ['rate_per_s', 'rate /s', true],
    ['ingest_lag_p95_ms', 'ingest lag p95 ms', true],
    ['event_to_store_p95_ms', 'event→store p95 ms', true],
    ['last_message_age_s', 'last msg age s', true],
    ['duplicates', 'duplicates', true],
    ['gaps_repaired', 'gaps repaired', true],
    ['gaps_unrepaired', 'gaps unrepaired', true],
    ['dead_letters', 'dead letters', true],
    ['stored', 'stored', true],
    ['reason', 'reason', false],
  ];
  const STALE_AFTER_MS = 5000;
  const POLL_MS = 2000;
  const RETRY_LIVE_MS = 30000;

  const root = document.getElementById('exchanges');
  const exchanges = new Map(); // exchange -> {section, status, tbody, rows: Map(symbol -> {tr, cells})}
  let lastDocAt = 0; // Date.now() when the last document arrived
  let gotLive = false;

  function cellClass(field, v) {
    if (typeof v !== 'number') return '';
    if (field === 'gaps_unrepaired' && v > 0) return 'bad-cell';
    if (field === 'dead_letters' && v > 0) return 'warn-cell';
    if (field === 'last_message_age_s' && v > 5) return 'warn-cell';
    return '';
  }

  function setCell(td, field, v, numeric) {
    if (numeric) {
      setText(td, fmtNum(v, 2));
      const raw = v === null || v === undefined ? '' : String(v);
      if (td.dataset.value !== raw) td.dataset.value = raw;
      const cls = 'num ' + cellClass(field, v);
      if (td.className !== cls.trim()) td.className = cls.trim();
    } else if (field === 'status') {
      const s = v === null || v === undefined ? '' : String(v);
      if (td.dataset.value !== s) {
        td.dataset.value = s;
        td.innerHTML = s ? badge(s) : '';
      }
    } else {
      setText(td, v === null || v === undefined ? '' : String(v));
    }
  }

  function makeExchange(name) {
    const section = document.createElement('section');
    section.className = 'card';
    section.setAttribute('data-testid', 'exchange-' + name);
    const h = document.createElement('h2');
    h.textContent = name + ' ';
    const status = document.createElement('span');
    status.setAttribute('data-testid', 'exchange-status-' + name);
    h.appendChild(status);
    section.appendChild(h);
    const wrap = document.createElement('div');
    wrap.className = 'scroll';
    const table = document.createElement('table');
    table.setAttribute('data-testid', 'streams-' + name);
    const thead = document.createElement('thead');
    thead.innerHTML = '<tr><th>symbol</th>' +
      FIELDS.map(([, head, num]) => '<th' + (num ? ' class="num"' : '') + '>' + esc(head) + '</th>').join('') + '</tr>';
    const tbody = document.createElement('tbody');
    table.appendChild(thead);
    table.appendChild(tbody);
    wrap.appendChild(table);
    section.appendChild(wrap);
    const entry = { section, status, tbody, rows: new Map(), statusValue: null };
    exchanges.set(name, entry);
    return entry;
  }

  function makeRow(ex, exName, symbol) {
    const tr = document.createElement('tr');
    tr.setAttribute('data-testid', 'stream-' + exName + '-' + symbol);
    tr.dataset.symbol = symbol;
    const th = document.createElement('td');
    th.setAttribute('data-field', 'symbol');
    th.textContent = symbol;
    tr.appendChild(th);
    const cells = {};
    for (const [field, , numeric] of FIELDS) {
      const td = document.createElement('td');
      td.setAttribute('data-field', field);
      if (numeric) td.className = 'num';
      tr.appendChild(td);
      cells[field] = td;
    }
    const row = { tr, cells };
    ex.rows.set(symbol, row);
    return row;
  }

  function apply(doc) {
    if (!doc || !Array.isArray(doc.exchanges)) return;
    lastDocAt = Date.now();
    const seenEx = new Set();
    let prevSection = null;
    for (const e of doc.exchanges) {
      const name = String(e.exchange);
      seenEx.add(name);
      const ex = exchanges.get(name) || makeExchange(name);
      // keep document order without moving nodes that are already in place
      const want = prevSection ? prevSection.nextSibling : root.firstChild;
      if (want !== ex.section) root.insertBefore(ex.section, want);
      prevSection = ex.section;
      const st = e.status === null || e.status === undefined ? '' : String(e.status);
      if (ex.statusValue !== st) {
        ex.statusValue = st;
        ex.status.innerHTML = st ? badge(st) : '';
      }
      const seenSym = new Set();
      let prevRow = null;
      for (const s of e.symbols || []) {
        const sym = String(s.symbol);
        seenSym.add(sym);
        const row = ex.rows.get(sym) || makeRow(ex, name, sym);
        const wantRow = prevRow ? prevRow.nextSibling : ex.tbody.firstChild;
        if (wantRow !== row.tr) ex.tbody.insertBefore(row.tr, wantRow);
        prevRow = row.tr;
        for (const [field, , numeric] of FIELDS) setCell(row.cells[field], field, s[field], numeric);
        const rowStatus = s.status === null || s.status === undefined ? '' : String(s.status);
        if (row.tr.dataset.status !== rowStatus) row.tr.dataset.status = rowStatus;
      }
      for (const [sym, row] of ex.rows) {
        if (!seenSym.has(sym)) { row.tr.remove(); ex.rows.delete(sym); }
      }
    }
    for (const [name, ex] of exchanges) {
      if (!seenEx.has(name)) { ex.section.remove(); exchanges.delete(name); }
    }
    if (!doc.exchanges.length) {
      if (!root.querySelector('.empty')) root.innerHTML = '<p class="empty">no exchanges reported</p>';
    } else {
      const empty = root.querySelector('.empty');
      if (empty) empty.remove();
    }
    setUpdated(doc.at, 'streams-updated');
    markStale();
  }

  function markStale() {
    const el = document.querySelector('.updated');
    if (!el) return;
    const stale = !lastDocAt || Date.now() - lastDocAt > STALE_AFTER_MS;
    el.classList.toggle('stale', stale);
  }

  function setMode(text) { setText(document.getElementById('streams-mode'), text); }

  // ---- live stream with polling fallback (at most one EventSource, one poller, one retry timer)
  let es = null;
  let stopPoll = null;
  let retryTimer = null;

  async function pollOnce() {
    let doc;
    try { doc = await api('/api/streams'); } catch (e) { return; }
    if (!es || !gotLive) apply(doc);
  }

  function startPolling() {
    if (!stopPoll) stopPoll = every(POLL_MS, pollOnce);
  }

  function stopPolling() {
    if (stopPoll) { stopPoll(); stopPoll = null; }
  }

  function startLive() {
    if (es) return;
    if (typeof EventSource === 'undefined') { setMode('polling every 2 s (no EventSource)'); startPolling(); return; }
    gotLive = false;
    es = new EventSource('/api/streams/live');
    es.onmessage = (ev) => {
      let doc;
      try { doc = JSON.parse(ev.data); } catch (err) { return; }
      if (!gotLive) { gotLive = true; setMode('live (server-sent events)'); stopPolling(); }
      apply(doc);
    };
    es.onerror = () => {
      if (es) { es.onmessage = null; es.onerror = null; es.close(); es = null; }
      gotLive = false;
      setMode('polling every 2 s (live stream unavailable, retrying)');
      startPolling();
      if (!retryTimer) retryTimer = setTimeout(() => { retryTimer = null; startLive(); }, RETRY_LIVE_MS);
    };
  }

  // first paint from a plain GET, then the live stream takes over
  api('/api/streams').then((doc) => { if (!gotLive) apply(doc); }).catch(() => {});
  startLive();
  setInterval(markStale, 1000);
  window.addEventListener('pagehide', () => {
    if (es) { es.onmessage = null; es.onerror = null; es.close(); es = null; gotLive = false; }
  });
  window.addEventListener('pageshow', (ev) => { if (ev.persisted) startLive(); });
})();
