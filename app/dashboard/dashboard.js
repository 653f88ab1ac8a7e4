// The mcp-orchestrator dashboard: plain JavaScript, no framework, served from
// the binary (app/dashboard.cpp). It reads one server-sent event stream
// (/api/events): a snapshot of every task first, then only the tasks that
// changed, applied to a client-side map, so the list is never downloaded
// again except when the server sends a new snapshot.
//
// The token: the page is opened as /#token=TOKEN; the token moves to
// sessionStorage, leaves the address bar, and goes out as a bearer header on
// every /api call. EventSource cannot send headers, so the stream is read with
// fetch() and a small SSE parser. With --no-auth there is no token.

const TOKEN_KEY = 'mcp-orchestrator.token';
const TAIL_BYTES = 64 * 1024;            // first read of an output stream
const OUTPUT_KEEP_CHARS = 512 * 1024;    // the output pane keeps at most this much
const OUTPUT_POLL_MS = 1000;
const MAX_ROWS = 500;                    // rows drawn at once; filters narrow the rest
const STREAM_SILENCE_MS = 12000;         // overview arrives every ~2 s; silence means dead
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const LIVE = new Set(['queued', 'waiting', 'running']);
const STATUSES = ['queued', 'waiting', 'running', 'completed', 'failed', 'cancelled'];

const $ = id => document.getElementById(id);

// ---------------------------------------------------------------- state

const state = {
  token: '',
  authFailed: false,
  tasks: new Map(),      // taskId → task JSON, as the server sent it
  seen: new Map(),       // taskId → arrival number, to order ties stably
  arrivals: 0,
  overview: null,
  overviewAt: 0,         // performance.now() when the overview arrived
  skewMs: 0,             // server clock − our clock
  selected: null,        // taskId shown in the details pane
  dirty: new Set(),      // rows to redraw
  allDirty: true,
  loaded: false,         // a snapshot has arrived
  renderQueued: false,
  stream: null,          // AbortController of the event stream
  filters: { status: 'all', tag: '', text: '' },
};

const rows = new Map();  // taskId → { tr, cells }

// ---------------------------------------------------------------- token and API

function takeToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  if (params.has('token')) {
    const token = (params.get('token') || '').trim();
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* storage disabled: keep it in memory */ }
    params.delete('token');
    const rest = params.toString();
    history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    return token;
  }
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return state.token; }
}

function authHeaders(extra = {}) {
  return state.token ? { ...extra, Authorization: `Bearer ${state.token}` } : extra;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = 'GET', signal } = {}) {
  let res;
  try {
    res = await fetch(path, { method, signal, cache: 'no-store', headers: authHeaders({ Accept: 'application/json' }) });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The server cannot be reached. Is mcp-orchestrator still running?');
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (res.status === 401) {
    showAuthNeeded();
    throw new ApiError(401, 'The server wants the access token.');
  }
  if (!res.ok) throw new ApiError(res.status, body?.error?.message || `HTTP ${res.status} ${res.statusText}`);
  return body;
}

function showAuthNeeded() {
  if (state.authFailed) return;
  state.authFailed = true;
  try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing kept */ }
  const had = state.token !== '';
  state.token = '';
  state.stream?.abort();
  setConn('auth', 'token needed');
  scheduleRender();
  const banner = $('banner');
  banner.replaceChildren();
  const title = document.createElement('strong');
  title.textContent = had ? 'The access token was not accepted.' : 'This dashboard needs the server\u2019s access token.';
  const p = document.createElement('p');
  p.append('Open the address the server printed when it started, the one that ends in ',
    code('#token=\u2026'), '. You can also add ', code('#token='),
    ' and the contents of the ', code('http-token'),
    ' file in the server\u2019s state directory to this page\u2019s address.');
  banner.append(title, p);
  banner.hidden = false;
}

function code(text) {
  const c = document.createElement('code');
  c.textContent = text;
  return c;
}

// A new #token=… typed into the address bar: try again without a reload.
window.addEventListener('hashchange', () => {
  if (!/(^#|&)token=/.test(location.hash)) return;
  state.token = takeToken();
  state.authFailed = false;
  $('banner').hidden = true;
  startEvents();
});

// ---------------------------------------------------------------- formatting

function fmtDuration(ms) {
  if (ms == null || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function fmtKb(kb) {
  if (kb == null) return '–';
  if (kb < 1024) return `${kb} KiB`;
  const mb = kb / 1024;
  return mb < 1024 ? `${mb.toFixed(mb < 10 ? 1 : 0)} MiB` : `${(mb / 1024).toFixed(2)} GiB`;
}

function fmtBytes(n) {
  return n < 1024 ? `${n} B` : fmtKb(Math.round(n / 1024));
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dateTimeFmt.format(d);
}

function fmtNum(v) {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
}

function serverNow() { return Date.now() + state.skewMs; }

// A running task's duration grows on our clock; a finished one is fixed.
function durationOf(task) {
  if (task.status === 'running' && task.startedAt) return serverNow() - Date.parse(task.startedAt);
  return task.durationMs;
}

function displayName(task) {
  return task.name || commandText(task) || task.taskId;
}

function commandText(task) {
  if (task.command != null) return task.command;
  if (Array.isArray(task.argv)) return task.argv.map(a => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
  return '';
}

function statusLabel(task) {
  return task.cancelRequested ? 'cancelling' : task.status;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

// ---------------------------------------------------------------- the overview

function setOverview(overview) {
  state.overview = overview;
  state.overviewAt = performance.now();
  if (Number.isFinite(overview.serverTimeMs)) state.skewMs = overview.serverTimeMs - Date.now();
  renderOverview();
}

function renderOverview() {
  const o = state.overview;
  if (!o) return;
  $('version').textContent = o.version ? `v${o.version}` : '';
  const title = o.running > 0 ? `${o.running} running \u00b7 mcp-orchestrator` : 'mcp-orchestrator';
  if (document.title !== title) document.title = title;
  $('stat-uptime').textContent = fmtDuration(o.uptimeMs + (performance.now() - state.overviewAt));
  $('stat-uptime').title = o.startedAt ? `started ${fullFmt.format(new Date(o.startedAt))}` : '';
  const restarts = o.restarts || {};
  const health = o.health || {};
  const degraded = health.status && health.status !== 'ok';
  $('stat-restarts').textContent = String(restarts.count ?? 0) + (degraded ? ' \u00b7 degraded' : '');
  const notes = [];
  if (restarts.lastReason) notes.push(`last: ${restarts.lastReason}`);
  if (degraded && health.reason) notes.push(`unhealthy: ${health.reason}`);
  if (restarts.limited) notes.push('automatic restart limit reached; staying up');
  $('stat-restarts').title = notes.join('\n');
  const mem = o.memory || {};
  $('stat-memory').textContent = `${fmtKb(mem.rssKb)} / ${fmtKb(mem.peakRssKb)}`;
  $('stat-memory').title = mem.systemAvailableKb != null ? `system available: ${fmtKb(mem.systemAvailableKb)}` : '';
  $('stat-queue').textContent = `${o.queueDepth} / ${o.queueLimit}`;
  $('stat-running').textContent = `${o.running} / ${o.maxConcurrent}`;
  const w = o.workers || {};
  $('stat-workers').textContent = `${w.busy} / ${w.idle}`;
  $('stat-workers').title = `${w.threads} threads of at most ${w.maxThreads}; ${w.queuedJobs} jobs waiting`;
  const http = o.http || {};
  $('stat-http').textContent = String(http.sessions ?? 0);
  $('stat-http').title = `${http.threads ?? 0} threads, ${http.busy ?? 0} busy, ${http.streams ?? 0} open streams`;
  renderNodes(o);
}

// Only servers sharing one store have nodes; a server alone hides the table.
function renderNodes(o) {
  const nodes = Array.isArray(o.nodes) ? o.nodes : [];
  $('nodes').hidden = nodes.length === 0;
  if (nodes.length === 0) return;
  const alive = nodes.filter(n => n.alive).length;
  $('node-count').textContent = `${alive} alive of ${nodes.length}`;
  const rows = nodes.map(n => {
    const tr = el('tr');
    const name = el('td', n.name === o.node ? 'node-self' : '', n.name);
    if (n.name === o.node) name.title = 'this server';
    tr.append(name,
      el('td', n.alive ? 'node-alive' : 'node-dead', n.alive ? 'alive' : 'lease expired'),
      el('td', 'col-num', `${fmtDuration(n.heartbeatAgeMs)} ago`),
      el('td', 'col-num', `${n.running} / ${n.maxConcurrent}`),
      el('td', '', n.health || ''),
      el('td', 'col-num', String(n.pid ?? '')),
      el('td', 'mono', n.url || 'no HTTP'));
    return tr;
  });
  $('node-rows').replaceChildren(...rows);
}

// ---------------------------------------------------------------- tasks: the map

function upsert(task) {
  if (!task || !task.taskId) return;
  if (!state.seen.has(task.taskId)) state.seen.set(task.taskId, ++state.arrivals);
  state.tasks.set(task.taskId, task);
  state.dirty.add(task.taskId);
}

function remove(id) {
  state.tasks.delete(id);
  state.seen.delete(id);
  state.dirty.add(id);
}

function applySnapshot(data) {
  state.tasks.clear();
  state.seen.clear();
  // The snapshot may come in any order; give older tasks the lower numbers.
  const tasks = [...(data.tasks || [])].sort((a, b) => (a.submittedAt < b.submittedAt ? -1 : a.submittedAt > b.submittedAt ? 1 : 0));
  for (const t of tasks) upsert(t);
  if (data.overview) setOverview(data.overview);
  state.allDirty = true;
  state.loaded = true;
  scheduleRender();
}

function applyDelta(data) {
  for (const t of data.changed || []) upsert(t);
  for (const id of data.removed || []) remove(id);
  scheduleRender();
}

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    render();
  });
}

// ---------------------------------------------------------------- tasks: the list

function matches(task) {
  const { status, tag, text } = state.filters;
  if (status === 'active' ? !LIVE.has(task.status) : status !== 'all' && task.status !== status) return false;
  if (tag && !(task.tags || []).includes(tag)) return false;
  if (text) {
    const hay = [task.taskId, task.name, commandText(task), task.message, ...(task.tags || [])]
      .filter(Boolean).join('\n').toLowerCase();
    if (!hay.includes(text)) return false;
  }
  return true;
}

function newestFirst(a, b) {
  if (a.submittedAt !== b.submittedAt) return a.submittedAt < b.submittedAt ? 1 : -1;
  return state.seen.get(b.taskId) - state.seen.get(a.taskId);
}

function render() {
  renderFilterOptions();
  const all = [...state.tasks.values()];
  const visible = all.filter(matches).sort(newestFirst);
  const shown = visible.slice(0, MAX_ROWS);
  const shownIds = new Set(shown.map(t => t.taskId));
  const tbody = $('task-rows');

  for (const [id, row] of rows) {
    if (!shownIds.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  let cursor = tbody.firstElementChild;
  for (const task of shown) {
    let row = rows.get(task.taskId);
    if (!row) {
      row = makeRow(task.taskId);
      rows.set(task.taskId, row);
      fillRow(row, task);
    } else if (state.allDirty || state.dirty.has(task.taskId)) {
      fillRow(row, task);
    }
    if (row.tr !== cursor) tbody.insertBefore(row.tr, cursor);
    else cursor = cursor.nextElementSibling;
  }

  $('task-count').textContent = visible.length === all.length ? `(${all.length})` : `(${visible.length} of ${all.length})`;
  const note = $('list-note');
  if (!state.loaded) {
    note.textContent = state.authFailed ? 'Tasks appear here once the server accepts the token.' : 'Loading tasks\u2026';
  } else if (all.length === 0) {
    note.textContent = 'No tasks yet. Submit one with the submitTask tool and it appears here at once.';
  } else if (visible.length === 0) {
    note.textContent = 'No task matches the filters.';
  } else if (visible.length > shown.length) {
    note.textContent = `Showing the newest ${shown.length} of ${visible.length} matching tasks; narrow the filters to see others.`;
  } else {
    note.textContent = '';
  }
  note.hidden = note.textContent === '';

  if (state.selected && (state.allDirty || state.dirty.has(state.selected))) renderDetails();
  state.dirty.clear();
  state.allDirty = false;
}

function renderFilterOptions() {
  const counts = Object.fromEntries(STATUSES.map(s => [s, 0]));
  const tags = new Set();
  for (const t of state.tasks.values()) {
    counts[t.status] = (counts[t.status] || 0) + 1;
    for (const tag of t.tags || []) tags.add(tag);
  }
  const active = counts.queued + counts.waiting + counts.running;
  for (const option of $('filter-status').options) {
    const n = option.value === 'all' ? state.tasks.size : option.value === 'active' ? active : counts[option.value];
    const label = `${option.value} (${n})`;
    if (option.textContent !== label) option.textContent = label;
  }
  const select = $('filter-tag');
  const wanted = ['', ...[...tags].sort()];
  if (state.filters.tag && !tags.has(state.filters.tag)) wanted.push(state.filters.tag);
  const current = [...select.options].map(o => o.value);
  if (current.join('\u0000') !== wanted.join('\u0000')) {
    select.replaceChildren(...wanted.map(v => new Option(v === '' ? 'any' : v, v)));
    select.value = state.filters.tag;
  }
}

// A row's elements are made once and updated in place, so a delta never
// takes the keyboard focus away from a button the user is on.
function makeRow(id) {
  const tr = el('tr');
  tr.dataset.taskId = id;
  const cells = {
    status: el('td', 'col-status'),
    task: el('td', 'col-task'),
    progress: el('td', 'col-progress'),
    duration: el('td', 'col-num'),
    started: el('td', 'col-time'),
    finished: el('td', 'col-time'),
    actions: el('td', 'col-actions'),
  };
  tr.append(...Object.values(cells));
  const row = { tr, cells, subKey: '' };
  row.badge = cells.status.appendChild(el('span', 'badge'));
  row.open = cells.task.appendChild(el('button', 'task-open'));
  row.open.type = 'button';
  row.open.title = 'Show details and output';
  row.sub = cells.task.appendChild(el('div', 'task-sub'));
  row.bar = cells.progress.appendChild(el('div', 'bar'));
  row.bar.setAttribute('role', 'progressbar');
  row.fill = row.bar.appendChild(el('div', 'bar-fill'));
  row.barText = cells.progress.appendChild(el('div', 'bar-text'));
  row.action = cells.actions.appendChild(el('button', 'button small'));
  row.action.type = 'button';
  row.action.addEventListener('click', e => {
    e.stopPropagation();
    act(row.action.dataset.action, id, row.action);
  });
  tr.addEventListener('click', e => {
    if (e.target.closest('button') && !e.target.closest('.task-open')) return;
    select(id);
  });
  return row;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setBadge(node, task) {
  node.className = `badge status-${task.cancelRequested ? 'cancelling' : task.status}`;
  setText(node, statusLabel(task));
  node.title = task.reason && task.reason !== 'exit_code' && task.reason !== 'cancelled' ? task.reason.replace(/_/g, ' ') : '';
}

function progressText(p) {
  if (!p) return '';
  return [p.total != null ? `${fmtNum(p.current)}/${fmtNum(p.total)}` : fmtNum(p.current), p.message].filter(Boolean).join(' ');
}

function fillRow(row, task) {
  const { tr, cells } = row;
  const selected = task.taskId === state.selected;
  tr.classList.toggle('selected', selected);
  setBadge(row.badge, task);

  setText(row.open, displayName(task));
  if (selected) row.open.setAttribute('aria-current', 'true');
  else row.open.removeAttribute('aria-current');
  const sub = [];
  if (task.name && commandText(task)) sub.push(['mono', commandText(task)]);
  for (const tag of task.tags || []) sub.push(['tag', tag]);
  if (task.attempt > 1 || task.maxAttempts > 1) sub.push(['muted', `attempt ${task.attempt}/${task.maxAttempts}`]);
  if (task.queuePosition) sub.push(['muted', `#${task.queuePosition} in queue`]);
  if (task.status === 'waiting' && task.message) sub.push(['muted', task.message]);
  const key = JSON.stringify(sub);
  if (row.subKey !== key) {
    row.subKey = key;
    row.sub.replaceChildren(...sub.map(([cls, text]) => el('span', cls, text)));
  }

  fillProgress(row, task);
  setText(cells.duration, fmtDuration(durationOf(task)));
  setText(cells.started, fmtTime(task.startedAt));
  cells.started.title = task.startedAt ? fullFmt.format(new Date(task.startedAt)) : '';
  setText(cells.finished, fmtTime(task.finishedAt));
  cells.finished.title = task.finishedAt ? fullFmt.format(new Date(task.finishedAt)) : '';

  const live = LIVE.has(task.status);
  const b = row.action;
  b.dataset.action = live ? 'cancel' : 'retry';
  b.className = live ? 'button small danger' : 'button small';
  setText(b, live ? (task.cancelRequested ? 'Stopping\u2026' : 'Cancel') : 'Retry');
  b.disabled = live && !!task.cancelRequested;
  b.setAttribute('aria-label', `${live ? 'Cancel' : 'Retry'} ${displayName(task)}`);
}

function fillProgress(row, task) {
  const p = task.progress;
  const { bar, fill, barText } = row;
  bar.hidden = !p && task.status !== 'running';
  barText.hidden = !p;
  if (bar.hidden) return;
  bar.setAttribute('aria-label', `Progress of ${displayName(task)}`);
  const determinate = !!p && p.total > 0;
  bar.classList.toggle('indeterminate', !determinate && task.status === 'running');
  if (determinate) {
    fill.style.width = `${Math.max(0, Math.min(100, (p.current / p.total) * 100))}%`;
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', String(p.total));
    bar.setAttribute('aria-valuenow', String(p.current));
  } else {
    fill.style.width = task.status === 'running' ? '' : '0%';
    for (const a of ['aria-valuemin', 'aria-valuemax', 'aria-valuenow']) bar.removeAttribute(a);
  }
  if (p) {
    setText(barText, progressText(p));
    bar.setAttribute('aria-valuetext', progressText(p));
  } else {
    bar.removeAttribute('aria-valuetext');
  }
}

// Durations of running tasks and the uptime tick once a second.
setInterval(() => {
  renderOverview();
  for (const [id, row] of rows) {
    const t = state.tasks.get(id);
    if (t && t.status === 'running') row.cells.duration.textContent = fmtDuration(durationOf(t));
  }
  const t = state.selected && state.tasks.get(state.selected);
  if (t && t.status === 'running') $('details-duration')?.replaceChildren(fmtDuration(durationOf(t)));
}, 1000);

// ---------------------------------------------------------------- actions

async function act(kind, id, button) {
  button.disabled = true;
  try {
    const res = await api(`/api/tasks/${encodeURIComponent(id)}/${kind}`, { method: 'POST' });
    // The event stream may already have brought a newer state of this task
    // (a cancelled process can end before this answer arrives): only a task
    // not seen yet is taken from the answer.
    const known = state.tasks.get(res.task.taskId);
    if (!known) upsert(res.task);
    // A running task is being stopped: say so until the stream says it ended.
    else if (res.task.cancelRequested && LIVE.has(known.status)) upsert({ ...known, cancelRequested: true });
    if (kind === 'retry') {
      button.disabled = false;
      toast(`Retry submitted as ${res.task.taskId}.`);
      select(res.task.taskId);
    }
    scheduleRender();
  } catch (e) {
    if (e.status !== 401) toast(`Could not ${kind}: ${e.message}`, 'error');
    button.disabled = false;
  }
}

function toast(message, kind = 'info') {
  const box = $('toasts');
  const t = el('div', `toast ${kind}`, message);
  box.append(t);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'error' ? 9000 : 4000);
}

// ---------------------------------------------------------------- details and output

const output = {
  id: null,
  stream: 'stdout',
  offset: null,   // next byte to read; null: read the tail first
  attempt: null,
  text: '',
  done: false,    // read to the end of a finished task
  partial: false, // the pane lacks the start of the output
  gen: 0,         // bumps on every switch, so a late answer is dropped
  timer: null,
  info: '',
};

function select(id) {
  if (state.selected === id) return;
  const previous = state.selected;
  state.selected = id;
  for (const pid of [previous, id]) {
    const row = pid && rows.get(pid);
    const t = pid && state.tasks.get(pid);
    if (row && t) fillRow(row, t);
  }
  $('details').hidden = false;
  document.body.classList.add('has-details');
  resetOutput();
  renderDetails();
  $('details-title').focus({ preventScroll: true });
}

function closeDetails() {
  const id = state.selected;
  state.selected = null;
  clearTimeout(output.timer);
  output.id = null;
  output.gen++;
  $('details').hidden = true;
  document.body.classList.remove('has-details');
  const row = id && rows.get(id);
  const t = id && state.tasks.get(id);
  if (row && t) {
    fillRow(row, t);
    row.tr.querySelector('.task-open')?.focus();
  }
}

function renderDetails() {
  const task = state.tasks.get(state.selected);
  if (!task) {
    $('details-title').textContent = 'Task removed';
    $('details-message').textContent = 'This task was removed by retention.';
    $('details-badge').hidden = true;
    $('details-cancel').hidden = true;
    $('details-retry').hidden = true;
    $('details-fields').replaceChildren();
    return;
  }
  $('details-title').textContent = displayName(task);
  const b = $('details-badge');
  b.hidden = false;
  setBadge(b, task);
  $('details-message').textContent = task.message || '';
  $('details-cancel').hidden = !LIVE.has(task.status);
  $('details-cancel').disabled = !!task.cancelRequested;
  $('details-retry').hidden = LIVE.has(task.status);

  const fields = [
    ['Task id', task.taskId, 'mono'],
    ['Command', commandText(task), 'mono'],
    ['Directory', task.cwd, 'mono'],
    ['Reason', task.reason && task.reason.replace(/_/g, ' ')],
    ['Exit code', task.exitCode],
    ['Signal', task.signal],
    ['Progress', progressText(task.progress)],
    ['Attempt', `${task.attempt} of ${task.maxAttempts}`],
    ['Priority', task.priority],
    ['Queue position', task.queuePosition],
    ['Process id', task.pid],
    ['Peak memory', task.peakRssKb && fmtKb(task.peakRssKb)],
    ['Submitted', task.submittedAt && fullFmt.format(new Date(task.submittedAt))],
    ['Started', task.startedAt && fullFmt.format(new Date(task.startedAt))],
    ['Finished', task.finishedAt && fullFmt.format(new Date(task.finishedAt))],
    ['Duration', fmtDuration(durationOf(task)), null, 'details-duration'],
    ['Depends on', (task.dependsOn || []).join(', '), 'mono'],
    ['Tags', (task.tags || []).join(', ')],
  ];
  // A finished task's byte counts are final: the tabs say which stream has
  // something. (While it runs, the pane's own reads say how much there is.)
  for (const stream of ['stdout', 'stderr']) {
    const n = task[`${stream}Bytes`];
    setText($(`tab-${stream}`), LIVE.has(task.status) || n == null ? stream : `${stream} \u00b7 ${fmtBytes(n)}`);
  }
  const dl = $('details-fields');
  dl.replaceChildren();
  for (const [label, value, cls, id] of fields) {
    if (value == null || value === '' || value === false) continue;
    const dd = el('dd', cls, String(value));
    if (id) dd.id = id;
    dl.append(el('dt', null, label), dd);
  }
}

function setStream(stream) {
  if (output.stream === stream) return;
  output.stream = stream;
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.dataset.stream === stream;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on) $('output').setAttribute('aria-labelledby', tab.id);
  }
  resetOutput();
}

function resetOutput() {
  clearTimeout(output.timer);
  output.timer = null;
  output.id = state.selected;
  output.offset = null;
  output.attempt = null;
  output.text = '';
  output.done = false;
  output.partial = false;
  output.info = '';
  output.gen++;
  $('output').textContent = '';
  $('output-info').textContent = '';
  if (output.id) pollOutput();
}

async function pollOutput() {
  clearTimeout(output.timer);
  output.timer = null;
  const { id, gen } = output;
  if (!id || state.authFailed) return;
  let status = null;
  try {
    // Read on while windows come back full (a burst of output), a few at a time.
    for (let round = 0; round < 8; round++) {
      const q = new URLSearchParams({ stream: output.stream });
      q.set('limit', String(TAIL_BYTES));
      if (output.offset !== null) q.set('offset', String(output.offset));
      const w = await api(`/api/tasks/${encodeURIComponent(id)}/output?${q}`);
      if (gen !== output.gen) return;
      status = w.status;
      if (output.offset !== null && w.attempt !== output.attempt) {
        // A new attempt started a fresh file: start again from its tail.
        output.offset = null;
        output.text = '';
        output.partial = false;
        continue;
      }
      const first = output.offset === null;
      output.attempt = w.attempt;
      let text = w.text;
      if (first && w.offset > 0) {
        // A tail starts mid-line; show whole lines only.
        const nl = text.indexOf('\n');
        if (nl >= 0 && nl < text.length - 1) text = text.slice(nl + 1);
      }
      appendOutput(text, first);
      output.offset = w.nextOffset;
      output.info = outputInfo(w, first);
      if (first || w.nextOffset - w.offset < TAIL_BYTES) break;
    }
  } catch (e) {
    if (gen !== output.gen || e.name === 'AbortError') return;
    if (e.status === 404) {
      output.done = true;
      $('output-info').textContent = 'the task is gone';
      return;
    }
    if (e.status === 401) return;
    output.info = `output unavailable: ${e.message}`;
  }
  if (gen !== output.gen) return;
  $('output-info').textContent = output.info;
  // Status comes before output in each answer, so output read after a final
  // status is complete.
  if (status && !LIVE.has(status)) {
    output.done = true;
    return;
  }
  output.timer = setTimeout(pollOutput, OUTPUT_POLL_MS);
}

function outputInfo(w, first) {
  if (first && w.offset > 0) output.partial = true;
  const parts = [`${fmtBytes(w.totalBytes)} written`];
  if (output.partial) parts.push('showing the latest part');
  if (w.capped) parts.push('capped: later output was not kept');
  return parts.join(' · ');
}

function appendOutput(text, replace) {
  const pre = $('output');
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  output.text = replace ? text : output.text + text;
  if (output.text.length > OUTPUT_KEEP_CHARS) {
    let cut = output.text.length - OUTPUT_KEEP_CHARS;
    const nl = output.text.indexOf('\n', cut);
    if (nl >= 0 && nl - cut < 4096) cut = nl + 1;
    output.text = output.text.slice(cut);
    output.partial = true;
  }
  if (!replace && text === '') return;
  pre.textContent = output.text;
  if (atBottom || replace) pre.scrollTop = pre.scrollHeight;
}

// ---------------------------------------------------------------- the event stream

function setConn(kind, text) {
  const c = $('conn');
  c.dataset.state = kind;
  c.textContent = text;
}

// Server-sent events over a fetch() body. Lines end in \n (the server never
// sends a bare \r); a blank line ends an event; lines starting with ':' are
// comments (the keepalives).
function sseParser(onEvent) {
  let buffer = '';
  let event = '';
  let data = [];
  return chunk => {
    buffer += chunk;
    let start = 0;
    let nl;
    while ((nl = buffer.indexOf('\n', start)) >= 0) {
      let line = buffer.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) onEvent(event || 'message', data.join('\n'));
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    buffer = buffer.slice(start);
  };
}

function handleEvent(name, raw) {
  let data;
  try { data = JSON.parse(raw); } catch { return; }
  if (name === 'snapshot') applySnapshot(data);
  else if (name === 'tasks') applyDelta(data);
  else if (name === 'overview') setOverview(data);
}

async function readEvents(controller) {
  const res = await fetch('/api/events', {
    signal: controller.signal,
    cache: 'no-store',
    headers: authHeaders({ Accept: 'text/event-stream' }),
  });
  if (res.status === 401) {
    showAuthNeeded();
    return false;
  }
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let live = false;
  let silence = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
  const parse = sseParser((name, raw) => {
    handleEvent(name, raw);
    if (name === 'snapshot' && !live) {
      live = true;
      setConn('live', 'live');
    }
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      clearTimeout(silence);
      silence = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
      parse(value);
    }
  } finally {
    clearTimeout(silence);
  }
  return live;
}

let eventsLoop = null;

function startEvents() {
  state.stream?.abort();
  if (eventsLoop) return;  // the running loop picks up the new token on its next turn
  eventsLoop = runEvents().finally(() => { eventsLoop = null; });
}

async function runEvents() {
  let backoff = BACKOFF_MIN_MS;
  while (!state.authFailed) {
    const controller = new AbortController();
    state.stream = controller;
    setConn('connecting', 'connecting…');
    let wasLive = false;
    try {
      wasLive = await readEvents(controller);
    } catch {
      // Dropped, refused or silent for too long: try again below.
    }
    if (state.authFailed) return;
    if (wasLive) backoff = BACKOFF_MIN_MS;
    const wait = Math.round(backoff * (0.75 + Math.random() * 0.5));
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    await countdown(wait);
  }
}

// Waits `ms`, saying when the next attempt comes.
function countdown(ms) {
  return new Promise(resolve => {
    const end = performance.now() + ms;
    const tick = () => {
      const left = end - performance.now();
      if (left <= 0 || state.authFailed) {
        resolve();
        return;
      }
      setConn('offline', `disconnected · retrying in ${Math.ceil(left / 1000)} s`);
      setTimeout(tick, Math.min(left, 1000));
    };
    tick();
  });
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('filter-status').addEventListener('change', e => {
    state.filters.status = e.target.value;
    state.allDirty = true;
    scheduleRender();
  });
  $('filter-tag').addEventListener('change', e => {
    state.filters.tag = e.target.value;
    state.allDirty = true;
    scheduleRender();
  });
  $('filter-text').addEventListener('input', e => {
    state.filters.text = e.target.value.trim().toLowerCase();
    state.allDirty = true;
    scheduleRender();
  });
  $('filters').addEventListener('submit', e => e.preventDefault());
  $('details-close').addEventListener('click', closeDetails);
  document.addEventListener('keydown', e => {
    if (e.key === 'Escape' && state.selected && !e.target.closest('input, select')) closeDetails();
  });
  $('details-cancel').addEventListener('click', e => act('cancel', state.selected, e.currentTarget));
  $('details-retry').addEventListener('click', e => act('retry', state.selected, e.currentTarget));
  const tabs = [...document.querySelectorAll('[role=tab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => setStream(tab.dataset.stream));
    tab.addEventListener('keydown', e => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const next = tabs[(tabs.indexOf(tab) + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      next.focus();
      setStream(next.dataset.stream);
    });
  }
}

state.token = takeToken();
wire();
render();
startEvents();
