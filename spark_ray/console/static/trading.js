/* Trading (/trading): a card per executor (health, breaker state, PnL, latency, equity curve,
 * positions, open orders, last fills) and the breaker trees with trip/reset/dry-run buttons.
 * Polls GET /api/trading every 2 s. Each executor's uPlot chart is created once and fed with
 * setData afterwards; cards of executors that disappear are removed and their charts destroyed. */
'use strict';

(() => {
  const FILLS_CAP = 50;
  const EVENTS_CAP = 200;
  const execRoot = document.getElementById('executors');
  const brkRoot = document.getElementById('breakers');
  const cards = new Map(); // executor name -> {el, parts: {...}, chart, chartEl}

  /* ---------- executors ---------- */

  function positionsList(pos) {
    if (!pos) return [];
    if (Array.isArray(pos)) return pos;
    return Object.keys(pos).map((sym) => Object.assign({ symbol: sym }, pos[sym]));
  }

  function sum(list, key) {
    let s = 0;
    let any = false;
    for (const p of list) if (typeof p[key] === 'number') { s += p[key]; any = true; }
    return any ? s : null;
  }

  function summaryHTML(x) {
    const positions = positionsList(x.positions);
    const realized = sum(positions, 'realized_pnl');
    const unrealized = sum(positions, 'unrealized_pnl');
    const fees = sum(positions, 'fees');
    const curve = x.equity_curve || [];
    const start = curve.length ? curve[0][1] : null;
    const change = typeof x.equity === 'number' && typeof start === 'number' ? x.equity - start : null;
    const lat = x.latency_ms || {};
    const reasons = (x.reasons || []).length ? ' <span class="small" style="color:var(--bad)">' + esc(x.reasons.join(', ')) + '</span>' : '';
    return '<div class="kv">' +
      '<span data-testid="health-' + esc(x.name) + '">health ' + okBadge(!!x.healthy, 'healthy', 'unhealthy') + reasons + '</span>' +
      '<span>mode <span class="tag">' + esc(x.mode || '?') + '</span></span>' +
      '<span data-testid="breaker-state-' + esc(x.name) + '">breaker <span class="mono">' + esc(x.breaker || '—') + '</span> ' +
        (x.breaker_state ? badge(x.breaker_state) : '') + '</span>' +
      '</div><div class="kv">' +
      '<span>cash <b>' + esc(fmtNum(x.cash, 2)) + '</b></span>' +
      '<span>equity <b>' + esc(fmtNum(x.equity, 2)) + '</b></span>' +
      '<span data-testid="pnl-' + esc(x.name) + '">PnL: realized <b>' + esc(fmtNum(realized, 4)) +
        '</b>, unrealized <b>' + esc(fmtNum(unrealized, 4)) + '</b>, fees <b>' + esc(fmtNum(fees, 4)) +
        '</b>, equity change <b>' + esc(fmtNum(change, 2)) + '</b></span>' +
      '<span data-testid="latency-' + esc(x.name) + '">tick→order latency ms: p50 <b>' + esc(fmtNum(lat.p50, 2)) +
        '</b> p95 <b>' + esc(fmtNum(lat.p95, 2)) + '</b> p99 <b>' + esc(fmtNum(lat.p99, 2)) +
        '</b> <span class="muted">(n=' + esc(fmtNum(lat.count)) + ')</span></span>' +
      '</div><div class="kv">' +
      '<button type="button" class="danger" data-kill="' + esc(x.name) + '" data-flatten="false" data-testid="kill-' +
        esc(x.name) + '">Kill (halt, cancel open orders, trip its breaker)</button>' +
      '<button type="button" class="danger" data-kill="' + esc(x.name) + '" data-flatten="true" data-testid="kill-flatten-' +
        esc(x.name) + '">Kill and flatten</button>' +
      (x.halted ? '<span>halted: <b>' + esc(x.halted) + '</b></span>' : '') +
      '</div>';
  }

  function table(testid, head, rows, emptyText) {
    const th = head.map(([label, num]) => '<th' + (num ? ' class="num"' : '') + '>' + esc(label) + '</th>').join('');
    const body = rows.length ? rows.join('') : '<tr><td colspan="' + head.length + '" class="empty">' + esc(emptyText) + '</td></tr>';
    return '<table data-testid="' + esc(testid) + '"><thead><tr>' + th + '</tr></thead><tbody>' + body + '</tbody></table>';
  }

  const td = (v) => '<td>' + esc(v) + '</td>';
  const tdn = (v, d = 4) => '<td class="num">' + esc(fmtNum(v, d)) + '</td>';

  function positionsHTML(x) {
    const rows = positionsList(x.positions).map((p) => '<tr data-symbol="' + esc(p.symbol) + '">' + td(p.symbol) +
      tdn(p.qty, 6) + tdn(p.avg_price, 6) + tdn(p.realized_pnl) + tdn(p.unrealized_pnl) + tdn(p.fees) + '</tr>');
    return '<h3>Positions</h3>' + table('positions-' + x.name,
      [['symbol'], ['qty', 1], ['avg price', 1], ['realized', 1], ['unrealized', 1], ['fees', 1]], rows, 'no positions');
  }

  function ordersHTML(x) {
    const rows = (x.open_orders || []).map((o) => '<tr>' + '<td class="mono">' + esc(o.id) + '</td>' + td(o.symbol) +
      td(o.side) + tdn(o.qty, 6) + tdn(o.price, 6) + td(o.status) + '</tr>');
    return '<h3>Open orders</h3>' + table('orders-' + x.name,
      [['id'], ['symbol'], ['side'], ['qty', 1], ['price', 1], ['status']], rows, 'no open orders');
  }

  function fillsHTML(x) {
    const all = (x.fills || []).slice();
    all.sort((a, b) => (toEpoch(b.time) || 0) - (toEpoch(a.time) || 0));
    const shown = all.slice(0, FILLS_CAP);
    const rows = shown.map((f) => '<tr>' + td(fmtTime(f.time)) + td(f.symbol) + td(f.side) + tdn(f.qty, 6) +
      tdn(f.price, 6) + tdn(f.fee, 6) + '</tr>');
    const note = all.length > FILLS_CAP ? ' <span class="muted small">(last ' + FILLS_CAP + ' of ' + all.length + ')</span>' : '';
    return '<h3>Last fills' + note + '</h3>' + table('fills-' + x.name,
      [['time'], ['symbol'], ['side'], ['qty', 1], ['price', 1], ['fee', 1]], rows, 'no fills');
  }

  function chartData(x) {
    const t = [];
    const v = [];
    for (const p of x.equity_curve || []) {
      const ts = Array.isArray(p) ? p[0] : p.time;
      const eq = Array.isArray(p) ? p[1] : p.equity;
      const s = toEpoch(ts);
      if (s === null) continue;
      t.push(s);
      v.push(typeof eq === 'number' ? eq : null);
    }
    return [t, v];
  }

  function chartWidth(el) { return Math.max(300, (el.clientWidth || 600) - 4); }

  function makeCard(name) {
    const el = document.createElement('section');
    el.className = 'card';
    el.setAttribute('data-testid', 'executor-' + name);
    el.innerHTML = '<h2 class="mono"></h2><div data-part="summary"></div>' +
      '<div class="chart" data-testid="equity-chart-' + esc(name) + '"></div><p class="empty small" data-part="nocurve"></p>' +
      '<div class="grid2"><div data-part="positions" class="scroll"></div><div data-part="orders" class="scroll"></div></div>' +
      '<div data-part="fills" class="scroll fills"></div>';
    el.querySelector('h2').textContent = name;
    const card = {
      el,
      chartEl: el.querySelector('.chart'),
      chart: null,
      noCurve: el.querySelector('[data-part="nocurve"]'),
      parts: {
        summary: el.querySelector('[data-part="summary"]'),
        positions: el.querySelector('[data-part="positions"]'),
        orders: el.querySelector('[data-part="orders"]'),
        fills: el.querySelector('[data-part="fills"]'),
      },
    };
    cards.set(name, card);
    return card;
  }

  function updateChart(card, data) {
    if (typeof uPlot === 'undefined') { setText(card.chartEl, 'chart library not loaded'); return; }
    const empty = data[0].length === 0;
    card.chartEl.hidden = empty;
    setText(card.noCurve, empty ? 'no equity curve yet' : '');
    if (empty && !card.chart) return;
    if (!card.chart) {
      const opts = {
        width: chartWidth(card.chartEl),
        height: 180,
        scales: { x: { time: true } },
        series: [
          {},
          { label: 'equity', stroke: '#1f5fbf', width: 1.5, fill: 'rgba(31,95,191,0.07)' },
        ],
        axes: [{}, { size: 70 }],
        legend: { live: true },
      };
      card.chart = new uPlot(opts, data, card.chartEl);
    } else {
      card.chart.setData(data);
    }
  }

  function renderExecutors(list) {
    const seen = new Set();
    let prev = null;
    for (const x of list) {
      const name = String(x.name);
      seen.add(name);
      const card = cards.get(name) || makeCard(name);
      const want = prev ? prev.nextSibling : execRoot.firstChild;
      if (want !== card.el) execRoot.insertBefore(card.el, want);
      prev = card.el;
      setHTML(card.parts.summary, summaryHTML(x));
      setHTML(card.parts.positions, positionsHTML(x));
      setHTML(card.parts.orders, ordersHTML(x));
      setHTML(card.parts.fills, fillsHTML(x));
      updateChart(card, chartData(x));
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        if (card.chart) card.chart.destroy();
        card.el.remove();
        cards.delete(name);
      }
    }
    const empty = execRoot.querySelector(':scope > .empty');
    if (!list.length && !empty) execRoot.insertAdjacentHTML('beforeend', '<p class="empty">no executors</p>');
    if (list.length && empty) empty.remove();
  }

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const card of cards.values()) {
        if (card.chart) card.chart.setSize({ width: chartWidth(card.chartEl), height: 180 });
      }
    }, 150);
  });

  /* ---------- breakers ---------- */

  function scopeButtons(breaker, s) {
    const a = ' data-breaker="' + esc(breaker) + '" data-scope="' + esc(s.scope) + '"';
    const dry = !!s.dry_run;
    return '<button type="button" class="danger" data-action="trip" data-testid="trip-' + esc(s.scope) + '"' + a + '>Trip</button>' +
      '<button type="button" data-action="reset" data-testid="reset-' + esc(s.scope) + '"' + a + '>Reset</button>' +
      '<button type="button" data-action="dry-run" data-on="' + (dry ? 'false' : 'true') + '" data-testid="dryrun-' + esc(s.scope) + '"' + a + '>' +
        (dry ? 'Dry-run off' : 'Dry-run on') + '</button>';
  }

  function scopeLine(breaker, s) {
    const reasons = (s.reasons || []).length ? '<span class="reasons">' + esc(s.reasons.join(', ')) + '</span>' : '';
    return '<div class="scope-line"><span class="scope-name">' + esc(s.scope) + '</span>' + badge(s.state || '?') +
      (s.dry_run ? '<span class="badge warn">dry-run</span>' : '') + reasons + scopeButtons(breaker, s) + '</div>';
  }

  function treeHTML(breaker, scopes) {
    const byName = new Map();
    for (const s of scopes) byName.set(String(s.scope), s);
    const isChild = new Set();
    for (const s of scopes) for (const c of s.children || []) if (byName.has(String(c))) isChild.add(String(c));
    const done = new Set();
    const node = (s) => {
      const key = String(s.scope);
      if (done.has(key)) return '';
      done.add(key);
      const kids = (s.children || []).map(String).filter((c) => byName.has(c) && !done.has(c));
      const inner = kids.map((c) => node(byName.get(c))).join('');
      return '<li data-testid="scope-' + esc(key) + '" data-breaker="' + esc(breaker) + '" data-state="' + esc(s.state) + '">' +
        scopeLine(breaker, s) + (inner ? '<ul>' + inner + '</ul>' : '') + '</li>';
    };
    let html = scopes.filter((s) => !isChild.has(String(s.scope))).map(node).join('');
    // anything left (cycles) is shown at the top level so that no scope is hidden
    html += scopes.filter((s) => !done.has(String(s.scope))).map(node).join('');
    return '<ul class="tree">' + (html || '<li class="empty">no scopes</li>') + '</ul>';
  }

  function eventsHTML(name, events) {
    const list = (events || []).slice();
    list.sort((a, b) => (toEpoch(b.time) || 0) - (toEpoch(a.time) || 0));
    const shown = list.slice(0, EVENTS_CAP);
    const rows = shown.map((e) => '<tr>' + td(fmtTime(e.time)) + '<td class="mono">' + esc(e.scope) + '</td>' +
      '<td>' + badge(e.event || '', '') + '</td>' + td(e.who) + td(e.reason) + '</tr>');
    const note = list.length > EVENTS_CAP ? ' <span class="muted small">(newest ' + EVENTS_CAP + ' of ' + list.length + ')</span>' : '';
    return '<h3>Events' + note + '</h3><div class="scroll">' +
      table('events-' + name, [['time'], ['scope'], ['event'], ['who'], ['reason']], rows, 'no events') + '</div>';
  }

  function breakersHTML(list) {
    if (!list.length) return '<p class="empty">no breakers</p>';
    return list.map((b) => '<section class="card" data-testid="breaker-' + esc(b.name) + '">' +
      '<h2 class="mono">' + esc(b.name) + '</h2>' + treeHTML(b.name, b.scopes || []) + eventsHTML(b.name, b.events) +
      '</section>').join('');
  }

  /* The executor's kill switch: POST /api/executor/kill (token, who, reason from the nav bar). */
  execRoot.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button[data-kill]');
    if (!btn || btn.disabled) return;
    btn.disabled = true;
    try {
      await post('/api/executor/kill', { executor: btn.dataset.kill, flatten: btn.dataset.flatten === 'true' });
      await refresh();
    } finally {
      if (btn.isConnected) btn.disabled = false;
    }
  });

  brkRoot.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button[data-action]');
    if (!btn || btn.disabled) return;
    const action = btn.dataset.action;
    const body = { breaker: btn.dataset.breaker, scope: btn.dataset.scope };
    if (action === 'dry-run') body.on = btn.dataset.on === 'true';
    btn.disabled = true;
    try {
      await post('/api/breaker/' + action, body);
      await refresh();
    } finally {
      if (btn.isConnected) btn.disabled = false;
    }
  });

  /* ---------- refresh ---------- */

  async function refresh() {
    let doc;
    try { doc = await api('/api/trading'); } catch (e) { return; }
    renderExecutors(doc.executors || []);
    setHTML(brkRoot, breakersHTML(doc.breakers || []));
    setUpdated(doc.at);
  }

  every(2000, refresh);
})();
