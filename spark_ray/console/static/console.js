/* spark-ray operator console: helpers shared by every page (plain ES2020, no build step).
 *
 * Globals: api(path), post(path, body), esc(), fmtNum(), fmtTime(), setHTML(), setUpdated(),
 * every(ms, fn) and the small formatters below. The nav bar inputs #who, #token and #reason are
 * read at the moment of each POST; #who and #token are kept in sessionStorage so they survive
 * navigation between pages of the same tab.
 */
'use strict';

const STORE_KEYS = { token: 'spark-ray-console.token', who: 'spark-ray-console.who' };

/* ---------- escaping and formatting ---------- */

function esc(v) {
  if (v === null || v === undefined) return '';
  return String(v)
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function pad2(n) { return n < 10 ? '0' + n : String(n); }

/* Epoch seconds (number) or ISO string -> Date, or null. */
function toDate(t) {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return new Date(t * 1000);
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : new Date(ms);
}

/* Epoch seconds (number) or ISO string -> epoch seconds, or null. */
function toEpoch(t) {
  if (typeof t === 'number') return t;
  const d = toDate(t);
  return d ? d.getTime() / 1000 : null;
}

/* HH:MM:SS in the browser's local time zone. */
function fmtClock(t) {
  const d = t instanceof Date ? t : toDate(t);
  if (!d) return '—';
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
}

/* Full timestamp: ISO strings are shown as given; epoch seconds as ISO UTC (second precision). */
function fmtTime(t) {
  if (t === null || t === undefined || t === '') return '—';
  if (typeof t === 'string') return t;
  const d = toDate(t);
  return d ? d.toISOString().replace('.000Z', 'Z') : String(t);
}

/* Numbers: integers as they are, others with at most `digits` decimals; null -> "—". */
function fmtNum(v, digits = 2) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const f = Math.pow(10, digits);
  const r = Math.round(v * f) / f;
  if (r === 0 && v !== 0) return v.toPrecision(2);
  return String(r);
}

function fmtPct(v, digits = 2) {
  if (v === null || v === undefined || typeof v !== 'number') return fmtNum(v);
  return fmtNum(v * 100, digits) + '%';
}

function fmtBytes(v) {
  if (typeof v !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return (i === 0 ? String(x) : x.toFixed(1)) + ' ' + units[i];
}

/* {a: 1, b: "x"} -> "a=1, b=x" (compact, for params and labels). */
function fmtParams(obj) {
  if (obj === null || obj === undefined) return '';
  if (typeof obj !== 'object') return String(obj);
  return Object.keys(obj).map((k) => {
    const v = obj[k];
    return k + '=' + (v !== null && typeof v === 'object' ? JSON.stringify(v) : fmtNum(v, 4));
  }).join(', ');
}

/* Status word -> badge class. */
function stateClass(s) {
  const v = String(s === null || s === undefined ? '' : s).toUpperCase();
  if (['OK', 'PASS', 'PASSED', 'ARMED', 'TRUE', 'HEALTHY', 'ALIVE', 'RESOLVED'].includes(v)) return 'ok';
  if (['TRIPPED', 'FAIL', 'FAILED', 'DOWN', 'ERROR', 'CRITICAL', 'DEAD', 'FALSE', 'FIRING'].includes(v)) return 'bad';
  if (['WARN', 'WARNING', 'DEGRADED', 'STALE', 'HALF_OPEN', 'DRY_RUN', 'ACTIVE', 'PENDING'].includes(v)) return 'warn';
  return '';
}

function badge(text, cls) {
  const c = cls === undefined ? stateClass(text) : cls;
  return '<span class="badge ' + c + '">' + esc(text) + '</span>';
}

function okBadge(ok, yes = 'OK', no = 'DOWN') {
  return ok ? badge(yes, 'ok') : badge(no, 'bad');
}

function tags(list) {
  return (list || []).map((k) => '<span class="tag">' + esc(k) + '</span>').join('');
}

/* ---------- DOM helpers ---------- */

const lastHTML = new WeakMap();

/* Assigns innerHTML only when it differs from what this helper last put there, so an unchanged
 * section keeps its nodes (selection, focus, open <details>) across refreshes. */
function setHTML(el, html) {
  if (!el) return false;
  if (lastHTML.get(el) === html) return false;
  lastHTML.set(el, html);
  el.innerHTML = html;
  return true;
}

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function $(sel, root) { return (root || document).querySelector(sel); }

/* Shows "updated HH:MM:SS" (t: epoch seconds, ISO string, or absent for now). */
function setUpdated(t, id = 'updated') {
  const el = document.getElementById(id);
  if (!el) return;
  const d = t === undefined || t === null ? new Date() : (toDate(t) || new Date());
  setText(el, fmtClock(d));
  el.setAttribute('datetime', d.toISOString());
  el.title = d.toISOString();
}

/* Runs fn now and then every ms milliseconds, never two at once. Returns a stop function. */
function every(ms, fn) {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try { await fn(); } catch (e) { console.warn(e); } finally { running = false; }
  };
  tick();
  const id = setInterval(tick, ms);
  return () => clearInterval(id);
}

/* ---------- API errors ---------- */

const apiErrors = new Map();

function renderApiErrors() {
  const el = document.getElementById('api-error');
  if (!el) return;
  const lines = [];
  apiErrors.forEach((msg, path) => lines.push('GET ' + path + ' failed: ' + msg));
  setText(el, lines.join('\n'));
}

function apiError(path, msg) {
  apiErrors.set(path, msg);
  renderApiErrors();
}

function apiOk(path) {
  if (apiErrors.delete(path)) renderApiErrors();
}

async function readBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch (e) { return { error: text.slice(0, 300) }; }
}

function errorText(status, data, statusText) {
  let msg = '';
  if (data && typeof data === 'object') msg = data.error || data.detail || data.message || '';
  if (!msg) msg = statusText || 'error';
  return status + ': ' + msg;
}

/* GET a JSON document. Throws on failure, after showing the error in #api-error. */
async function api(path) {
  const key = path.split('?')[0];
  let resp;
  try {
    resp = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    apiError(key, 'network error: ' + (e && e.message ? e.message : e));
    throw e;
  }
  const data = await readBody(resp);
  if (!resp.ok) {
    const msg = errorText(resp.status, data, resp.statusText);
    apiError(key, msg);
    const err = new Error(msg);
    err.status = resp.status;
    err.data = data;
    throw err;
  }
  apiOk(key);
  return data;
}

/* ---------- auth inputs and POST ---------- */

function authValues() {
  const who = ($('#who') || {}).value || '';
  const token = ($('#token') || {}).value || '';
  const reasonEl = $('#reason');
  const reason = reasonEl ? reasonEl.value : '';
  return { who: who.trim(), token: token.trim(), reason: reason.trim() || 'from console' };
}

function showAction(cls, text) {
  const el = document.getElementById('action-result');
  if (!el) return;
  el.className = cls;
  el.textContent = text;
}

/* POST a mutation: body gets who and reason from the nav bar, the token goes in Authorization.
 * Shows "STATUS: ..." in #action-result and resolves to {ok, status, data}; never throws. */
async function post(path, body) {
  const a = authValues();
  const payload = Object.assign({}, body || {}, { who: a.who, reason: a.reason });
  showAction('pending', 'POST ' + path + ' …');
  let resp;
  try {
    resp = await fetch(path, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        Authorization: 'Bearer ' + a.token,
      },
      body: JSON.stringify(payload),
      cache: 'no-store',
    });
  } catch (e) {
    const msg = 'network error: ' + (e && e.message ? e.message : e);
    showAction('err', 'POST ' + path + ' failed: ' + msg);
    return { ok: false, status: 0, data: { error: msg } };
  }
  const data = await readBody(resp);
  if (resp.ok) {
    let extra = '';
    if (data && typeof data === 'object') {
      const r = data.result !== undefined ? data.result : data.status;
      if (r !== undefined && r !== null) extra = ' ' + (typeof r === 'object' ? JSON.stringify(r) : r);
    }
    showAction('ok', resp.status + ': OK POST ' + path + extra);
  } else {
    showAction('err', errorText(resp.status, data, resp.statusText) + ' (POST ' + path + ')');
  }
  return { ok: resp.ok, status: resp.status, data };
}

/* ---------- nav bar wiring ---------- */

function initNav() {
  for (const name of ['token', 'who']) {
    const el = document.getElementById(name);
    if (!el) continue;
    try {
      const saved = sessionStorage.getItem(STORE_KEYS[name]);
      if (saved !== null && !el.value) el.value = saved;
    } catch (e) { /* storage disabled: inputs still work for this page */ }
    el.addEventListener('input', () => {
      try { sessionStorage.setItem(STORE_KEYS[name], el.value); } catch (e) { /* ignore */ }
    });
  }
  const reason = document.getElementById('reason');
  if (reason && !reason.value) reason.value = 'from console';
  // Mark the current page's link even when the server maps the page at another path.
  const here = location.pathname.replace(/\/+$/, '') || '/';
  document.querySelectorAll('.nav .links a').forEach((a) => {
    const p = a.getAttribute('href').replace(/\/+$/, '') || '/';
    const hit = p === here || here === '/static/' + (a.dataset.page || '') + '.html';
    if (hit) { a.classList.add('current'); a.setAttribute('aria-current', 'page'); }
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', initNav);
} else {
  initNav();
}
