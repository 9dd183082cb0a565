// demo.js: the demo call page (web/index.html). A mesh video call with every
// other tab in the same room, a data-channel chat, and a live signaling log.
import { SigstreamClient } from './sigstream.js';
import { PeerMesh, loopbackOnly } from './negotiation.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$('room').value = params.get('room') ?? `demo-${Math.random().toString(36).slice(2, 6)}`;
$('name').value = params.get('name') ?? '';

const state = { client: null, mesh: null, stream: null, me: null, myMeta: null, participants: new Map() };
window.sigstreamDemo = state; // for the end-to-end tests and the curious

function log(text, cls = '') {
  const li = document.createElement('li');
  if (cls) li.className = cls;
  const time = document.createElement('time');
  time.textContent = new Date().toISOString().slice(11, 23);
  li.append(time, text);
  $('log').append(li);
  $('log').scrollTop = $('log').scrollHeight;
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
  if (text) log(text, 'error');
}

function setStatus(text, st) { $('status').textContent = text; $('status').dataset.state = st; }

function tile(peer, { local = false } = {}) {
  let el = document.querySelector(`.tile[data-peer="${CSS.escape(peer)}"]`);
  if (el) return el;
  el = document.createElement('div');
  el.className = `tile ${local ? 'local' : 'remote'}`;
  el.dataset.peer = peer;
  el.dataset.state = local ? 'connected' : 'new';
  const video = Object.assign(document.createElement('video'), { autoplay: true, playsInline: true, muted: local });
  const label = document.createElement('div');
  label.className = 'label';
  el.append(video, label);
  $('tiles').append(el);
  $('empty').hidden = true;
  return el;
}

function render() {
  const body = $('participants');
  body.replaceChildren();
  for (const [peer, p] of state.participants) {
    const tr = document.createElement('tr');
    tr.dataset.peer = peer;
    if (peer === state.me) tr.className = 'me';
    const name = p.meta?.name ? `${p.meta.name} · ` : '';
    for (const [text, cls] of [[name + peer, ''], [p.instance ?? '?', 'instance'], [p.state, `state-${p.state}`]]) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    body.append(tr);
    const el = tile(peer, { local: peer === state.me });
    el.dataset.state = p.state;
    const label = el.querySelector('.label');
    label.replaceChildren(...[name + peer + (peer === state.me ? ' (you)' : ''), p.instance ?? '?', p.state]
      .map((t) => Object.assign(document.createElement('span'), { textContent: t })));
  }
  for (const el of document.querySelectorAll('.tile')) if (!state.participants.has(el.dataset.peer)) el.remove();
  $('empty').hidden = state.participants.size > 0;
}

function chat(who, text, mine = false) {
  const li = document.createElement('li');
  if (mine) li.className = 'mine';
  li.append(Object.assign(document.createElement('span'), { className: 'who', textContent: who }), text);
  $('chat-log').append(li);
  $('chat-log').scrollTop = $('chat-log').scrollHeight;
}

function enableChat(on) { $('chat-input').disabled = !on; $('chat-send').disabled = !on; }

function onJoined(joined) {
  state.me = joined.peer;
  // After a resume the calls went on (media does not pass through the
  // service): keep each peer's connection state.
  const before = joined.resumed ? new Map(state.participants) : new Map();
  state.participants.clear();
  // `instance` fields are sigstream's extension of the protocol: exact, as
  // recorded by the instance that took each join.
  state.participants.set(joined.peer, { meta: state.myMeta, instance: joined.instance, state: 'connected' });
  for (const { peer, meta, instance } of joined.peers) {
    state.participants.set(peer, { meta, instance, state: before.get(peer)?.state ?? 'new' });
  }
  tile(joined.peer, { local: true }).querySelector('video').srcObject = state.stream;
  setStatus(`in “${joined.room}” as ${joined.peer}`, 'joined');
  log(`joined room “${joined.room}” as ${joined.peer} (seq ${joined.seq}), ${joined.peers.length} other peer(s)`);
  render();
}

async function join(ev) {
  ev.preventDefault();
  showError('');
  const room = $('room').value;
  $('join').disabled = true;
  try {
    if (!state.stream) {
      try {
        state.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      } catch (err) {
        log(`no camera/microphone (${err.name}); joining without media`, 'error');
        state.stream = new MediaStream();
      }
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const client = state.client ??= new SigstreamClient(`${scheme}://${location.host}/ws`);
    if (!state.mesh) wire(client);
    await client.connect();
    state.myMeta = $('name').value ? { name: $('name').value } : {};
    const joined = await client.join(room, state.myMeta);
    onJoined(joined);
    state.mesh.attach(joined);
    history.replaceState(null, '', `?room=${encodeURIComponent(room)}`);
    $('join').hidden = true; $('leave').hidden = false; $('room').disabled = true; $('name').disabled = true;
  } catch (err) {
    showError(`join failed: ${err.code ?? err.name}: ${err.message}`);
  } finally {
    $('join').disabled = false;
  }
}

function wire(client) {
  // ?ice=loopback keeps media on the loopback interface (the browser tests use it).
  const acceptCandidate = params.get('ice') === 'loopback' ? loopbackOnly : undefined;
  const mesh = state.mesh = new PeerMesh(client, { stream: state.stream, dataChannel: 'chat', acceptCandidate });
  client.addEventListener('open', () => log('WebSocket open'));
  client.addEventListener('close', ({ detail }) => { log(`WebSocket closed (${detail.code})`, 'error'); setStatus('disconnected', 'idle'); });
  client.addEventListener('reconnecting', ({ detail }) => { log(`reconnecting in ${detail.delayMs} ms (attempt ${detail.attempt + 1})`); setStatus('reconnecting…', 'reconnecting'); });
  client.addEventListener('reconnected', ({ detail }) => {
    log(detail?.resumed ? `reconnected and resumed as ${detail.peer} (missed events follow)` : 'reconnected');
    if (detail) onJoined(detail);
  });
  client.addEventListener('peer-joined', ({ detail }) => {
    log(`peer-joined ${detail.peer} on ${detail.instance ?? '?'} (seq ${detail.seq})`);
    state.participants.set(detail.peer, { meta: detail.meta, instance: detail.instance, state: 'new' });
    render();
  });
  client.addEventListener('peer-left', ({ detail }) => {
    log(`peer-left ${detail.peer} (${detail.reason}, seq ${detail.seq})`);
    state.participants.delete(detail.peer);
    render();
  });
  client.addEventListener('signal', ({ detail }) => {
    const kind = detail.data?.description?.type ?? (detail.data?.candidate ? `ice candidate ${detail.data.candidate.candidate?.split(' ').slice(4, 8).join(' ') || '(end)'}` : 'data');
    log(`signal from ${detail.from}: ${kind} (seq ${detail.seq})`);
  });
  client.addEventListener('error', ({ detail }) => showError(`error ${detail.code}: ${detail.message}`));
  mesh.addEventListener('track', ({ detail }) => {
    const video = tile(detail.peer).querySelector('video');
    if (video.srcObject !== detail.streams[0]) video.srcObject = detail.streams[0] ?? new MediaStream([detail.track]);
  });
  mesh.addEventListener('connectionstatechange', ({ detail }) => {
    log(`${detail.peer}: connection ${detail.state}`);
    const p = state.participants.get(detail.peer);
    if (p) { p.state = detail.state; render(); }
  });
  mesh.addEventListener('datachannel', ({ detail }) => {
    detail.channel.addEventListener('open', () => { log(`${detail.peer}: chat channel open`); enableChat(true); });
  });
  mesh.addEventListener('message', ({ detail }) => {
    const p = state.participants.get(detail.peer);
    chat(p?.meta?.name || detail.peer, String(detail.data));
  });
  mesh.addEventListener('error', ({ detail }) => log(`${detail.peer}: ${detail.error?.code ?? detail.error?.name}: ${detail.error?.message}`, 'error'));
}

async function leave() {
  try { await state.client?.leave(); } catch (err) { log(`leave: ${err.code}: ${err.message}`, 'error'); }
  state.mesh.close();
  state.mesh = null;
  state.client.close();
  state.client = null;
  state.participants.clear();
  render();
  enableChat(false);
  setStatus('not connected', 'idle');
  log('left the room');
  $('join').hidden = false; $('leave').hidden = true; $('room').disabled = false; $('name').disabled = false;
}

$('join-form').addEventListener('submit', join);
$('leave').addEventListener('click', leave);
$('chat-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text || !state.mesh) return;
  const n = state.mesh.send(text);
  chat('you', n ? text : `${text} (nobody to send to)`, true);
  $('chat-input').value = '';
});
