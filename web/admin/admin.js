// admin.js: the admin page (web/admin/index.html, served at /admin/). Lists
// the rooms, and for the selected one shows its members and its history as a
// live timeline, read from the admin API (GET /admin/rooms,
// /admin/rooms/{room}, /admin/rooms/{room}/history?format=jsonl&follow=1)
// with the bearer token the operator types in, kept in sessionStorage only.
import { createTimeline, renderEventDetails } from './timeline.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'sigstream-admin-token';
const API_BASE = new URL('./', import.meta.url); // the API lives next to this file: /admin/
const ROOMS_REFRESH_MS = 15000;
const CLUSTER_REFRESH_MS = 3000; // heartbeats are 1 s apart by default

const storage = {
  get() { try { return sessionStorage.getItem(TOKEN_KEY) ?? ''; } catch { return ''; } },
  set(token) { try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* storage off: kept in memory */ } },
  clear() { try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing stored */ } },
};

const state = {
  token: storage.get(),
  rooms: [],
  room: null, // the selected room's name
  stream: null, // AbortController of the history stream
  members: null, // AbortController of the members request
  retryTimer: null,
  membersTimer: null,
  attempt: 0,
  lastSeq: null, // last seq shown, to resume the stream without duplicates
  live: false,
  adminOff: false,
};

const details = $('details');
renderEventDetails(details, null);
// Below 1280 px the details float over the page's corner while an event is
// selected (below the timeline a click would seem to do nothing).
const showDetails = (ev) => {
  renderEventDetails(details, ev, (peer) => timeline.nameOf(peer));
  document.body.dataset.event = ev ? 'selected' : '';
};
const timeline = createTimeline($('timeline'), { follow: true, onSelect: showDetails });
$('details-close').addEventListener('click', () => showDetails(null));
timeline.emptyText = 'No events in this room yet. New ones appear here as they happen.';

// For the end-to-end tests and the curious.
window.sigstreamAdmin = {
  get timeline() { return timeline; },
  get room() { return state.room; },
  get events() { return timeline.events; },
  get live() { return state.live; },
};

// ---- API -------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

const roomPath = (room) => `rooms/${encodeURIComponent(room)}`;

async function request(path, signal) {
  const res = await fetch(new URL(path, API_BASE), {
    headers: { Authorization: `Bearer ${state.token}`, Accept: 'application/json, application/x-ndjson' },
    cache: 'no-store', signal,
  });
  if (res.ok) return res;
  let body = null;
  try { body = await res.json(); } catch { /* not JSON: the status says enough */ }
  throw new ApiError(res.status, typeof body?.error === 'string' ? body.error : '', typeof body?.message === 'string' ? body.message : '');
}

const getJson = async (path, signal) => (await request(path, signal)).json();

// Errors that concern the whole page rather than one request: a wrong token,
// or an instance without an admin token. True when handled.
function handlePageError(err) {
  if (err.status === 401) {
    forgetToken('Wrong token: the instance refused it. Enter the admin token again.');
    return true;
  }
  if (err.status === 404 && err.code === 'admin-off') {
    adminOff(err.message);
    return true;
  }
  return false;
}

// ---- status, notices, token ------------------------------------------------

function setStatus(text, st) {
  $('status').textContent = text;
  $('status').dataset.state = st;
}

function notice(text, kind = 'error') {
  $('notice').textContent = text;
  $('notice').dataset.kind = kind;
  $('notice').hidden = !text;
}

// token: asking for the token; off: the admin API is off; ready: rooms shown.
function setMode(mode) { document.body.dataset.mode = mode; }

function showTokenForm(show) {
  if (show) setMode('token');
  $('token-form').hidden = !show;
  $('token-state').hidden = show || !state.token;
  if (show) {
    $('token').value = '';
    $('token').focus();
  }
}

function forgetToken(message = '') {
  state.token = '';
  storage.clear();
  stopStream();
  clearTimeout(state.membersTimer);
  state.rooms = [];
  renderRooms();
  showRoomView(false);
  showTokenForm(true);
  notice(message, 'error');
  setStatus(message ? 'wrong token' : 'token needed', message ? 'error' : 'idle');
}

function adminOff(message) {
  state.adminOff = true;
  setMode('off');
  stopStream();
  state.rooms = [];
  renderRooms();
  showRoomView(false);
  $('token-form').hidden = true;
  $('token-state').hidden = true;
  notice(message || 'The admin API is off on this instance.', 'plain');
  setStatus('admin API off', 'error');
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  state.token = token;
  storage.set(token);
  notice('');
  showTokenForm(false);
  start();
});

$('token-forget').addEventListener('click', () => forgetToken());

// ---- rooms -----------------------------------------------------------------

function ago(time) {
  const t = Date.parse(time);
  if (Number.isNaN(t)) return '';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

async function loadRooms() {
  if (!state.token) return false;
  $('refresh').disabled = true;
  try {
    const body = await getJson('rooms');
    state.adminOff = false;
    setMode('ready');
    state.rooms = Array.isArray(body?.rooms) ? body.rooms.filter((r) => r && typeof r.room === 'string') : [];
    $('token-state').hidden = false;
    if ($('notice').dataset.kind !== 'stream') notice('');
    renderRooms();
    if (!state.room) setStatus(plural(state.rooms.length, 'room'), 'idle');
    return true;
  } catch (err) {
    if (handlePageError(err)) return false;
    if (err.status === 404) { // not even the admin-off answer: no admin API here
      adminOff(err.message !== 'HTTP 404' ? err.message : 'This server has no admin API (404 on /admin/rooms).');
      return false;
    }
    if (!state.adminOff) setMode('ready');
    notice(`Cannot load the rooms: ${err.message}`, 'error');
    setStatus('cannot reach the instance', 'error');
    return false;
  } finally {
    $('refresh').disabled = false;
  }
}

function renderRooms() {
  const filter = $('filter').value.trim().toLowerCase();
  const shown = state.rooms.filter((r) => !filter || r.room.toLowerCase().includes(filter));
  const list = $('rooms');
  list.replaceChildren(...shown.map((r) => {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'room-item';
    button.dataset.room = r.room;
    if (r.room === state.room) button.setAttribute('aria-current', 'true');
    const name = Object.assign(document.createElement('span'), { className: 'room-name', textContent: r.room || '(empty name)' });
    const stats = Object.assign(document.createElement('span'), {
      className: 'room-stats',
      textContent: `${plural(Number(r.members) || 0, 'member')} · ${plural(Number(r.events) || 0, 'event')}`,
    });
    const when = Object.assign(document.createElement('time'), { className: 'room-when', textContent: ago(r.last_activity) });
    if (typeof r.last_activity === 'string') when.dateTime = when.title = r.last_activity;
    button.title = r.room;
    button.append(name, when, stats);
    if (Number(r.members) > 0) button.classList.add('active');
    li.append(button);
    return li;
  }));
  $('room-count').textContent = state.rooms.length ? String(state.rooms.length) : '';
  const empty = $('rooms-empty');
  empty.hidden = shown.length > 0 || !state.token || state.adminOff;
  empty.textContent = state.rooms.length ? 'No room matches the filter.' : 'No rooms yet.';
}

$('filter').addEventListener('input', renderRooms);
$('refresh').addEventListener('click', () => {
  if (state.adminOff) start();
  else if (state.token) { loadRooms(); if (state.room !== null) loadMembers(); }
});
$('rooms').addEventListener('click', (ev) => {
  const button = ev.target.closest('.room-item');
  if (!button) return;
  const hash = `#room=${encodeURIComponent(button.dataset.room)}`;
  if (location.hash === hash) openRoom(button.dataset.room); // already there: reopen (e.g. after an error)
  else location.hash = hash;
});

// ---- the selected room -----------------------------------------------------

function roomFromHash() {
  const m = /^#room=(.*)$/s.exec(location.hash);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch { return null; }
}

function showRoomView(show) {
  $('room-view').hidden = !show;
  $('welcome').hidden = show;
}

function openRoom(room) {
  stopStream();
  clearTimeout(state.membersTimer);
  state.room = room;
  state.lastSeq = null;
  state.attempt = 0;
  timeline.clear();
  showDetails(null);
  for (const b of document.querySelectorAll('.room-item')) b.toggleAttribute('aria-current', b.dataset.room === room);
  if (room === null) {
    showRoomView(false);
    document.title = 'sigstream admin';
    setStatus(plural(state.rooms.length, 'room'), 'idle');
    return;
  }
  document.title = `${room} · sigstream admin`;
  $('room-name').textContent = room || '(empty name)';
  $('room-meta').textContent = '';
  $('members').replaceChildren();
  $('member-count').textContent = '';
  $('members-note').hidden = true;
  showRoomView(true);
  if (!state.token || state.adminOff) return;
  if (room === '.' || room === '..') {
    // URL parsers resolve these path segments (escaped or not): the API
    // cannot be asked about them from a browser.
    $('members-note').hidden = false;
    $('members-note').textContent = `A room named “${room}” cannot be read from a browser; use \`sigstream history\`.`;
    setStatus('cannot open this room here', 'error');
    return;
  }
  loadMembers();
  startStream();
}

async function loadMembers() {
  const room = state.room;
  state.members?.abort();
  const ctrl = state.members = new AbortController();
  try {
    const body = await getJson(roomPath(room), ctrl.signal);
    if (room !== state.room) return;
    renderMembers(body);
  } catch (err) {
    if (ctrl.signal.aborted || room !== state.room || handlePageError(err)) return;
    $('members').replaceChildren();
    $('member-count').textContent = '';
    $('members-note').hidden = false;
    $('members-note').textContent = err.status === 404
      ? `No room “${room}” right now${err.message && err.code !== 'not-found' ? ` (${err.message})` : ''}.`
      : `Cannot load the members: ${err.message}`;
  }
}

function renderMembers(body) {
  const members = Array.isArray(body?.members) ? body.members : [];
  const parts = [];
  if (body?.seq !== undefined) parts.push(`seq ${body.seq}`);
  if (body?.events !== undefined) parts.push(`${plural(Number(body.events) || 0, 'event')} stored`);
  $('room-meta').textContent = parts.join(' · ');
  $('member-count').textContent = String(members.length);
  $('members').replaceChildren(...members.map((m) => {
    const tr = document.createElement('tr');
    tr.dataset.peer = String(m?.peer ?? '');
    const name = m?.meta && typeof m.meta === 'object' && m.meta.name !== undefined ? String(m.meta.name) : '';
    const joined = typeof m?.joined_at === 'string' ? m.joined_at.replace('T', ' ').replace(/(\.\d{3})\d*Z$/, '$1Z') : '';
    const cells = [
      [String(m?.peer ?? '?'), 'mono nowrap'],
      [name || '—', name ? '' : 'muted'],
      [String(m?.instance ?? '?'), 'mono nowrap'],
      [joined + (m?.joined_seq !== undefined ? ` · seq ${m.joined_seq}` : ''), 'mono nowrap when'],
    ];
    for (const [text, cls] of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    if (m?.meta !== undefined) tr.title = `meta: ${JSON.stringify(m.meta)}`;
    tr.addEventListener('click', () => timeline.select(m?.joined_seq));
    return tr;
  }));
  $('members-note').hidden = members.length > 0;
  $('members-note').textContent = 'Nobody is in this room right now.';
}

function scheduleMembers() {
  clearTimeout(state.membersTimer);
  state.membersTimer = setTimeout(loadMembers, 250);
}

// ---- the history stream (application/x-ndjson, follow=1: never ends) -------

function stopStream() {
  state.stream?.abort();
  state.stream = null;
  state.members?.abort();
  state.members = null;
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  state.live = false;
}

function liveStatus() {
  setStatus(`live · ${plural(timeline.events.length, 'event')}`, 'live');
}

// One parsed line. A line that is not JSON is shown as unreadable.
function parseLine(line) {
  try {
    const ev = JSON.parse(line);
    if (ev && typeof ev === 'object' && !Array.isArray(ev)) return ev;
  } catch { /* below */ }
  return { kind: 'unreadable', size: new TextEncoder().encode(line).length, note: 'this line of the stream is not a JSON object' };
}

function onLines(lines) {
  const batch = [];
  let membership = false;
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.trim()) continue;
    const ev = parseLine(line);
    if (typeof ev.seq === 'number') {
      if (state.lastSeq !== null && ev.seq <= state.lastSeq) continue; // seen before a reconnect
      state.lastSeq = ev.seq;
    }
    if (ev.kind === 'join' || ev.kind === 'leave') membership = true;
    batch.push(ev);
  }
  if (!batch.length) return;
  timeline.addAll(batch);
  if (membership) scheduleMembers();
  liveStatus();
}

async function startStream() {
  const room = state.room;
  const ctrl = state.stream = new AbortController();
  const params = new URLSearchParams({ format: 'jsonl', follow: '1' });
  if (state.lastSeq !== null) params.set('since', String(state.lastSeq + 1));
  setStatus(state.attempt ? 'reconnecting…' : 'loading history…', 'connecting');
  try {
    const res = await request(`${roomPath(room)}/history?${params}`, ctrl.signal);
    if (!res.body) throw new Error('this browser cannot read streamed responses');
    state.live = true;
    if (state.attempt) loadMembers(); // joins and leaves may have happened meanwhile
    state.attempt = 0;
    if ($('notice').dataset.kind === 'stream') notice('');
    liveStatus();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let pending = []; // pieces of a line not yet ended, possibly over many chunks
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      const lines = [];
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        pending.push(text.slice(start, nl));
        lines.push(pending.join(''));
        pending = [];
        start = nl + 1;
      }
      if (start < text.length) pending.push(text.slice(start));
      onLines(lines);
    }
    onLines([pending.join('') + decoder.decode()]);
    throw new Error('the server ended the stream');
  } catch (err) {
    if (ctrl.signal.aborted || state.stream !== ctrl) return; // switched rooms or forgot the token
    state.live = false;
    if (handlePageError(err)) return;
    if (err.status === 404 || err.status === 400) {
      state.stream = null;
      setStatus(err.status === 404 ? 'room not found' : 'request refused', 'error');
      notice(`History of “${room}”: ${err.message}`, 'stream');
      return;
    }
    retry(err);
  }
}

// Reconnects with exponential backoff and jitter, resuming after the last seq.
function retry(err) {
  const delay = Math.round(Math.min(10000, 500 * 2 ** state.attempt) * (0.5 + Math.random() / 2));
  state.attempt += 1;
  setStatus(`disconnected, retrying in ${Math.max(1, Math.round(delay / 1000))} s`, 'retrying');
  $('status').title = err.message;
  state.retryTimer = setTimeout(() => {
    state.retryTimer = null;
    $('status').title = '';
    if (state.room !== null && state.stream && !state.stream.signal.aborted) startStream();
  }, delay);
}

// ---- start -----------------------------------------------------------------

async function start() {
  if (!state.token) {
    showTokenForm(true);
    setStatus('token needed', 'idle');
    return;
  }
  showTokenForm(false);
  await loadRooms();
  loadCluster();
  if (state.token && !state.adminOff) openRoom(roomFromHash());
}

window.addEventListener('hashchange', () => {
  const room = roomFromHash();
  if (room !== state.room) openRoom(room);
});

// ---- cluster -----------------------------------------------------------------

// The instances from their heartbeats, and where NATS keeps the stream
// (GET /admin/cluster: what `sigstream cluster` prints).
async function loadCluster() {
  if (!state.token || state.adminOff) return;
  let body;
  try { body = await getJson('cluster'); } catch { return; }  // the rooms list reports reachability
  const rows = (Array.isArray(body?.instances) ? body.instances : []).map((i) => {
    const tr = document.createElement('tr');
    tr.dataset.instance = String(i.instance);
    const beat = i.heartbeat_age_ms;
    const cells = [
      [String(i.instance), `version ${i.heartbeat?.version ?? '?'}`],
      [String(i.heartbeat?.connections ?? '?')],
      [String(i.heartbeat?.peers ?? '?')],
      [String(i.heartbeat?.rooms ?? '?')],
      [typeof beat === 'number' ? `${(beat / 1000).toFixed(1)} s` : '?'],
    ];
    for (const [text, title] of cells) tr.append(Object.assign(document.createElement('td'), { textContent: text, title: title ?? '' }));
    // Older than a few heartbeats: the instance is probably gone (it is
    // listed until its entry expires).
    if (typeof beat === 'number' && beat > 5000) tr.className = 'stale';
    return tr;
  });
  $('instances').replaceChildren(...rows);
  const st = body?.stream;
  $('stream-where').textContent = !st ? 'stream: cannot be read now'
    : !st.cluster ? `stream ${st.name}: one NATS server, ${plural(st.replicas, 'copy')}`
    : `stream ${st.name}: NATS cluster ${st.cluster}, leader ${st.leader || '(none: electing, or no quorum)'}`
      + (st.copies?.length ? `; ${st.copies.map((c) => `${c.name} ${c.state}${c.state === 'lagging' ? ` (${c.lag} behind)` : ''}`).join(', ')}` : '');
}

setInterval(() => {
  if (state.token && !state.adminOff && document.visibilityState === 'visible') loadRooms();
}, ROOMS_REFRESH_MS);
setInterval(() => {
  if (document.visibilityState === 'visible') loadCluster();
}, CLUSTER_REFRESH_MS);

start();
