/* Research (/research): the runs list (GET /api/runs) and one run's parts (GET /api/runs/{id}):
 * backtest (metrics, trades, price/equity chart with entries and exits), optimization leaderboard
 * with scenarios, review, approval (POST /api/approve). research.html#run=<id> opens a run. */
'use strict';

(() => {
  const LEADERBOARD_FIRST = 100;
  const TRADES_FIRST = 100;
  const runsBody = $('#runs tbody');
  const detail = document.getElementById('run-detail');
  let current = null; // id of the run shown
  let chart = null; // uPlot of the shown backtest
  let loadSeq = 0;

  /* ---------- runs list ---------- */

  function summaryText(sum) {
    if (!sum) return '';
    const parts = [];
    const b = sum.backtest;
    if (b) {
      parts.push('backtest ' + (b.strategy || '') + (b.sharpe !== undefined ? ' sharpe ' + fmtNum(b.sharpe, 2) : '') +
        (b.total_return !== undefined ? ' return ' + fmtPct(b.total_return, 1) : ''));
    }
    const o = sum.optimization;
    if (o) {
      parts.push('opt ' + (o.strategy || '') + (o.trials !== undefined ? ' ' + o.trials + ' trials' : '') +
        (o.best_objective !== undefined ? ' best ' + fmtNum(o.best_objective, 3) : '') +
        (o.pbo !== null && o.pbo !== undefined ? ' PBO ' + fmtNum(o.pbo, 2) : ''));
    }
    if (sum.review) parts.push('review ' + (sum.review.verdict || '?'));
    if (sum.approval) parts.push('approved by ' + (sum.approval.approved_by || '?'));
    for (const k of Object.keys(sum)) {
      if (!['backtest', 'optimization', 'review', 'approval'].includes(k)) {
        const v = sum[k];
        parts.push(k + (v && typeof v === 'object' ? ' ' + fmtParams(v) : v !== undefined ? ' ' + v : ''));
      }
    }
    return parts.join(' · ');
  }

  function runRow(r) {
    return '<tr data-testid="run-' + esc(r.id) + '" data-run="' + esc(r.id) + '"' + (r.id === current ? ' class="selected"' : '') + '>' +
      '<td class="mono"><a href="#run=' + encodeURIComponent(r.id) + '">' + esc(r.id) + '</a></td>' +
      '<td class="small">' + esc(fmtTime(r.created)) + '</td>' +
      '<td>' + tags(r.kinds) + '</td>' +
      '<td class="summary">' + esc(summaryText(r.summary)) + '</td></tr>';
  }

  async function loadRuns() {
    let doc;
    try { doc = await api('/api/runs'); } catch (e) { return; }
    const runs = doc.runs || [];
    setHTML(runsBody, runs.length ? runs.map(runRow).join('') : '<tr><td colspan="4" class="empty">no runs</td></tr>');
    setText(document.getElementById('runs-count'), (doc.count !== undefined ? doc.count : runs.length) + ' runs' +
      (doc.root ? ' in ' + doc.root : ''));
    setUpdated();
  }

  function markSelected() {
    runsBody.querySelectorAll('tr.selected').forEach((tr) => tr.classList.remove('selected'));
    if (current === null) return;
    for (const tr of runsBody.querySelectorAll('tr[data-run]')) {
      if (tr.dataset.run === current) tr.classList.add('selected');
    }
  }

  runsBody.addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-run]');
    if (!tr) return;
    ev.preventDefault();
    const h = '#run=' + encodeURIComponent(tr.dataset.run);
    if (location.hash === h) loadRun(tr.dataset.run);
    else location.hash = h;
  });

  document.getElementById('runs-reload').addEventListener('click', () => {
    loadRuns();
    if (current !== null) loadRun(current);
  });

  /* ---------- one run ---------- */

  function kvTable(testid, obj) {
    const keys = Object.keys(obj || {});
    if (!keys.length) return '<p class="empty">none</p>';
    return '<table data-testid="' + esc(testid) + '"><tbody>' + keys.map((k) => {
      const v = obj[k];
      const shown = v !== null && typeof v === 'object' ? JSON.stringify(v) : fmtNum(v, 4);
      return '<tr><th>' + esc(k) + '</th><td class="num">' + esc(shown) + '</td></tr>';
    }).join('') + '</tbody></table>';
  }

  function tradeRows(trades) {
    return trades.map((t) => '<tr>' +
      '<td>' + esc(t.symbol) + '</td><td class="small">' + esc(fmtTime(t.entry_time)) + '</td>' +
      '<td class="small">' + esc(fmtTime(t.exit_time)) + '</td>' +
      '<td class="num">' + esc(fmtNum(t.entry_price, 6)) + '</td><td class="num">' + esc(fmtNum(t.exit_price, 6)) + '</td>' +
      '<td class="num">' + esc(fmtNum(t.qty, 6)) + '</td><td class="num">' + esc(fmtNum(t.pnl, 4)) + '</td>' +
      '<td class="num">' + esc(fmtPct(t.return, 2)) + '</td></tr>').join('');
  }

  function backtestHTML(b) {
    const trades = b.trades || [];
    const head = '<tr><th>symbol</th><th>entry time</th><th>exit time</th><th class="num">entry</th><th class="num">exit</th>' +
      '<th class="num">qty</th><th class="num">pnl</th><th class="num">return</th></tr>';
    const more = trades.length > TRADES_FIRST
      ? '<button type="button" data-testid="trades-show-all" data-show-all="trades">show all ' + trades.length + ' trades</button>' : '';
    return '<section class="card" data-testid="backtest"><h2>Backtest</h2>' +
      '<div class="kv"><span>strategy <b>' + esc(b.strategy) + '</b></span><span>symbols <b>' + esc((b.symbols || []).join(', ')) +
      '</b></span><span>interval <b>' + esc(b.interval) + '</b></span><span>params <span class="mono">' + esc(fmtParams(b.params)) +
      '</span></span></div>' +
      '<div class="chart" data-testid="backtest-chart" id="backtest-chart"></div>' +
      '<h3>Metrics</h3>' + kvTable('metrics', b.metrics) +
      '<h3>Trades <span class="muted small">(' + trades.length + ')</span></h3>' +
      '<div class="scroll"><table data-testid="trades"><thead>' + head + '</thead><tbody>' +
      (trades.length ? tradeRows(trades.slice(0, TRADES_FIRST)) : '<tr><td colspan="8" class="empty">no trades</td></tr>') +
      '</tbody></table></div>' + more + '</section>';
  }

  function scenarioNames(o) {
    if (Array.isArray(o.scenarios) && o.scenarios.length) return o.scenarios.map(String);
    const seen = new Set();
    for (const t of o.trials || []) for (const k of Object.keys(t.scenarios || {})) seen.add(k);
    return Array.from(seen);
  }

  function trialRows(trials, scen) {
    return trials.map((t) => {
      const sc = t.scenarios || {};
      return '<tr data-trial="' + esc(t.trial_id) + '"><td class="num">' + esc(fmtNum(t.rank)) + '</td>' +
        '<td class="mono">' + esc(t.trial_id) + '</td><td class="num">' + esc(fmtNum(t.objective, 4)) + '</td>' +
        '<td class="num">' + esc(fmtNum(t.oos_sharpe_ann, 2)) + '</td><td class="num" data-col="dsr">' + esc(fmtNum(t.dsr, 3)) + '</td>' +
        '<td class="mono small">' + esc(fmtParams(t.params)) + '</td>' +
        scen.map((s) => {
          const v = sc[s] || {};
          return '<td class="num">' + esc(fmtNum(v.oos_sharpe, 3)) + '</td><td class="num">' + esc(fmtPct(v.oos_return, 2)) + '</td>';
        }).join('') + '</tr>';
    }).join('');
  }

  function optimizationHTML(o) {
    const trials = (o.trials || []).slice();
    trials.sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity));
    const scen = scenarioNames(o);
    // OOS SR: annualized Sharpe of the trial's out-of-sample returns; DSR: its deflated Sharpe ratio.
    const head1 = '<tr><th rowspan="2" class="num">rank</th><th rowspan="2">trial_id</th><th rowspan="2" class="num">objective</th>' +
      '<th rowspan="2" class="num" title="annualized Sharpe of the out-of-sample returns">OOS SR</th>' +
      '<th rowspan="2" class="num" title="deflated Sharpe ratio: probability the Sharpe beats the best of N trials of no skill">DSR</th>' +
      '<th rowspan="2">params</th>' + scen.map((s) => '<th colspan="2">' + esc(s) + '</th>').join('') + '</tr>';
    const head2 = '<tr>' + scen.map(() => '<th class="num">oos_sharpe</th><th class="num">oos_return</th>').join('') + '</tr>';
    const more = trials.length > LEADERBOARD_FIRST
      ? '<button type="button" data-testid="leaderboard-show-all" data-show-all="leaderboard">show all ' + trials.length + ' trials</button>' : '';
    return '<section class="card" data-testid="optimization"><h2>Optimization</h2>' +
      '<div class="kv"><span>strategy <b>' + esc(o.strategy) + '</b></span><span>trials <b>' + trials.length +
      '</b></span><span>scenarios <b>' + esc(scen.join(', ') || '—') + '</b></span>' +
      (o.pbo !== null && o.pbo !== undefined ? '<span title="probability of backtest overfitting (CSCV)">PBO <b data-testid="pbo">' +
        esc(fmtNum(o.pbo, 2)) + '</b></span>' : '') + '</div>' +
      '<div class="scroll"><table data-testid="leaderboard" id="leaderboard"><thead>' + head1 + (scen.length ? head2 : '') +
      '</thead><tbody>' + (trials.length ? trialRows(trials.slice(0, LEADERBOARD_FIRST), scen)
        : '<tr><td colspan="' + (6 + 2 * scen.length) + '" class="empty">no trials</td></tr>') +
      '</tbody></table></div>' + more + '</section>';
  }

  // A rule's inputs (N trials, variance, T, skew, kurtosis...), one line; nested values shortened.
  function inputsText(inputs) {
    return Object.entries(inputs).map(([k, v]) => k + '=' +
      (v !== null && typeof v === 'object' ? JSON.stringify(v) : fmtNum(v, 4))).join(', ');
  }

  function reviewHTML(r) {
    const checks = r.checks || {};
    const names = Object.keys(checks);
    const rows = names.map((k) => {
      const c = checks[k] || {};
      const val = (v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : fmtNum(v, 4));
      return '<tr data-check="' + esc(k) + '"><td>' + esc(k) + '</td><td>' + badge(c.status || '?') + '</td>' +
        '<td class="num">' + esc(val(c.value)) + '</td><td class="num">' + esc(val(c.limit)) + '</td><td>' + esc(c.why) +
        (c.inputs ? '<div class="small muted mono" data-testid="inputs">' + esc(inputsText(c.inputs)) + '</div>' : '') + '</td></tr>';
    }).join('');
    return '<section class="card" data-testid="review"><h2>Review <span data-testid="verdict">' + badge(r.verdict || '?') +
      '</span></h2><table data-testid="checks"><thead><tr><th>check</th><th>status</th><th class="num">value</th>' +
      '<th class="num">limit</th><th>why</th></tr></thead><tbody>' +
      (rows || '<tr><td colspan="5" class="empty">no checks</td></tr>') + '</tbody></table></section>';
  }

  function approvalHTML(run) {
    const a = run.approval;
    let inner;
    if (a) {
      inner = '<p data-testid="approved">' + badge('approved', 'ok') + ' by <b>' + esc(a.approved_by) + '</b> at ' +
        esc(fmtTime(a.approved_at)) + '</p>' + (a.params && Object.keys(a.params).length
        ? '<p class="small">params <span class="mono">' + esc(fmtParams(a.params)) + '</span></p>' : '');
    } else {
      const why = run.approvable ? 'the review passed and the run has no approval yet'
        : (run.review ? 'not approvable: review verdict ' + (run.review.verdict || '?') : 'not approvable: the run has no review');
      inner = '<p><button type="button" class="primary" data-testid="approve" id="approve"' + (run.approvable ? '' : ' disabled') +
        '>Approve</button> <span class="muted small">' + esc(why) + '</span></p>';
    }
    return '<section class="card" data-testid="approval"><h2>Approval</h2>' + inner + '</section>';
  }

  function otherHTML(run) {
    const known = new Set(['id', 'kinds', 'backtest', 'optimization', 'review', 'approval', 'approvable']);
    const keys = Object.keys(run).filter((k) => !known.has(k));
    if (!keys.length) return '';
    return keys.map((k) => '<section class="card" data-testid="part-' + esc(k) + '"><h2>' + esc(k) + '</h2>' +
      '<details><summary>raw</summary><pre class="index">' + esc(JSON.stringify(run[k], null, 2)) + '</pre></details></section>').join('');
  }

  /* index of the time in sorted `times` nearest to t */
  function nearestIndex(times, t) {
    let lo = 0;
    let hi = times.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(times[lo - 1] - t) <= Math.abs(times[lo] - t)) return lo - 1;
    return lo;
  }

  function drawBacktestChart(b) {
    const el = document.getElementById('backtest-chart');
    if (!el) return;
    const eq = b.equity || {};
    const times = (eq.time || []).map(toEpoch);
    if (!times.length) { el.innerHTML = '<p class="empty">no equity series</p>'; return; }
    if (typeof uPlot === 'undefined') { el.textContent = 'chart library not loaded'; return; }
    const equity = eq.equity || [];
    const hasPrice = Array.isArray(eq.price) && eq.price.length > 0;
    const data = [times];
    const series = [{}];
    const axes = [{}];
    const scales = { x: { time: true } };
    if (hasPrice) {
      const entries = new Array(times.length).fill(null);
      const exits = new Array(times.length).fill(null);
      const syms = b.symbols || [];
      const first = times[0];
      const last = times[times.length - 1];
      for (const t of b.trades || []) {
        if (syms.length > 1 && t.symbol && t.symbol !== syms[0]) continue;
        const te = toEpoch(t.entry_time);
        if (te !== null && te >= first && te <= last && typeof t.entry_price === 'number') entries[nearestIndex(times, te)] = t.entry_price;
        const tx = toEpoch(t.exit_time);
        if (tx !== null && tx >= first && tx <= last && typeof t.exit_price === 'number') exits[nearestIndex(times, tx)] = t.exit_price;
      }
      data.push(eq.price, equity, entries, exits);
      scales.price = {};
      scales.equity = {};
      series.push(
        { label: 'price', scale: 'price', stroke: '#5b6470', width: 1 },
        { label: 'equity', scale: 'equity', stroke: '#1f5fbf', width: 1.5 },
        { label: 'entries', scale: 'price', stroke: '#17803d', fill: '#17803d', paths: () => null,
          points: { show: true, size: 9, width: 1, stroke: '#0f5a2a', fill: '#22a052', space: 0 } },
        { label: 'exits', scale: 'price', stroke: '#b42318', fill: '#b42318', paths: () => null,
          points: { show: true, size: 9, width: 1, stroke: '#7a1710', fill: '#d9473a', space: 0 } },
      );
      axes.push({ scale: 'price', label: 'price', size: 70 }, { scale: 'equity', label: 'equity', side: 1, size: 80, grid: { show: false } });
    } else {
      data.push(equity);
      scales.equity = {};
      series.push({ label: 'equity', scale: 'equity', stroke: '#1f5fbf', width: 1.5 });
      axes.push({ scale: 'equity', label: 'equity', size: 80 });
    }
    const opts = {
      width: Math.max(320, (el.clientWidth || 800) - 4),
      height: 320,
      scales,
      series,
      axes,
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
    };
    chart = new uPlot(opts, data, el);
    el.dataset.series = String(series.length - 1);
    el.dataset.points = String(times.length);
  }

  function destroyChart() {
    if (chart) { chart.destroy(); chart = null; }
  }

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      const el = document.getElementById('backtest-chart');
      if (chart && el) chart.setSize({ width: Math.max(320, el.clientWidth - 4), height: 320 });
    }, 150);
  });

  let shown = null; // the run document on screen, for "show all"

  function renderRun(run) {
    destroyChart();
    shown = run;
    const kinds = run.kinds || [];
    let html = '<section class="card"><h2 class="mono" data-testid="run-id">' + esc(run.id) + '</h2><div>' + tags(kinds) + '</div></section>';
    if (run.backtest) html += backtestHTML(run.backtest);
    if (run.optimization) html += optimizationHTML(run.optimization);
    if (run.review) html += reviewHTML(run.review);
    if (run.approval || run.review || run.approvable) html += approvalHTML(run);
    html += otherHTML(run);
    detail.innerHTML = html;
    if (run.backtest) drawBacktestChart(run.backtest);
  }

  async function loadRun(id) {
    const seq = ++loadSeq;
    current = id;
    markSelected();
    let run;
    try { run = await api('/api/runs/' + encodeURIComponent(id)); } catch (e) {
      if (seq === loadSeq) { destroyChart(); detail.innerHTML = '<p class="empty">could not load run ' + esc(id) + '</p>'; }
      return;
    }
    if (seq !== loadSeq) return; // a newer click won
    renderRun(run);
  }

  detail.addEventListener('click', async (ev) => {
    const more = ev.target.closest('button[data-show-all]');
    if (more && shown) {
      if (more.dataset.showAll === 'leaderboard' && shown.optimization) {
        const o = shown.optimization;
        const trials = (o.trials || []).slice();
        trials.sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity));
        $('#leaderboard tbody', detail).innerHTML = trialRows(trials, scenarioNames(o));
      } else if (more.dataset.showAll === 'trades' && shown.backtest) {
        $('[data-testid="trades"] tbody', detail).innerHTML = tradeRows(shown.backtest.trades || []);
      }
      more.remove();
      return;
    }
    const approve = ev.target.closest('button[data-testid="approve"]');
    if (approve && !approve.disabled && shown) {
      const id = shown.id;
      approve.disabled = true;
      const res = await post('/api/approve', { run: id });
      if (res.ok) {
        await loadRun(id);
        loadRuns();
      } else if (approve.isConnected) {
        approve.disabled = false;
      }
    }
  });

  function fromHash() {
    const m = /^#run=(.+)$/.exec(location.hash);
    if (!m) return;
    let id;
    try { id = decodeURIComponent(m[1]); } catch (e) { id = m[1]; }
    loadRun(id);
  }

  window.addEventListener('hashchange', fromHash);
  loadRuns();
  fromHash();
})();
