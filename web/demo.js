// demo.js: the demo call page (web/index.html). A mesh video call with every
// other tab in the same room: a camera and microphone preview with a device
// picker before joining, mic and camera toggles (the others see them),
// an invite link, a data-channel chat, and a live signaling log.
import { SigstreamClient } from './sigstream.js';
import { PeerMesh, loopbackOnly } from './negotiation.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$('room').value = params.get('room') ?? `demo-${Math.random().toString(36).slice(2, 6)}`;
$('name').value = params.get('name') ?? '';

const state = {
  client: null, mesh: null, stream: null, me: null, myMeta: null, participants: new Map(),
  media: { audio: true, video: true },  // what this page sends (the toggles)
  previewing: null,  // the camera and microphone being opened (a promise)
};
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

// A peer as people know it: the name of its join's meta, else the start of its id.
function nameOf(peer) {
  const name = state.participants.get(peer)?.meta?.name;
  return typeof name === 'string' && name ? name : `${peer.slice(0, 7)}…`;
}
// In the signaling log, the name and the whole id (what the history tools show).
function who(peer) {
  const name = state.participants.get(peer)?.meta?.name;
  return typeof name === 'string' && name ? `${name} (${peer})` : peer;
}

function inviteLink() {
  return `${location.origin}${location.pathname}?room=${encodeURIComponent($('room').value)}`;
}

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
    const media = peer === state.me ? state.media : (p.media ?? { audio: true, video: true });
    el.dataset.audio = media.audio ? 'on' : 'off';
    el.dataset.video = media.video ? 'on' : 'off';
    const spans = [
      [nameOf(peer) + (peer === state.me ? ' (you)' : ''), 'name'],
      ...(media.audio ? [] : [['mic off', 'muted']]),
      ...(media.video ? [] : [['camera off', 'muted']]),
      [p.instance ?? '?', 'instance'],
      [p.state, 'state'],
    ];
    el.querySelector('.label').replaceChildren(...spans.map(([t, c]) => Object.assign(document.createElement('span'), { textContent: t, className: c })));
  }
  for (const el of document.querySelectorAll('.tile')) if (!state.participants.has(el.dataset.peer)) el.remove();
  $('tiles').dataset.count = String(state.participants.size);
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
  setStatus(`in “${joined.room}” as ${nameOf(joined.peer)}`, 'joined');
  log(`joined room “${joined.room}” as ${who(joined.peer)} (seq ${joined.seq}), ${joined.peers.length} other peer(s)`);
  render();
  // Whoever was here before us learns our toggles (newcomers are told on peer-joined).
  if (!state.media.audio || !state.media.video) sendMedia(null);
}

async function join(ev) {
  ev.preventDefault();
  showError('');
  const room = $('room').value;
  $('join').disabled = true;
  try {
    // One getUserMedia at a time: the preview's, if it is still opening.
    await (state.previewing ??= startPreview());
    applyMedia();
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
    $('preview').hidden = true;
    $('mic-select').disabled = true; $('camera-select').disabled = true;
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
    state.participants.set(detail.peer, { meta: detail.meta, instance: detail.instance, state: 'new' });
    log(`peer-joined ${who(detail.peer)} on ${detail.instance ?? '?'} (seq ${detail.seq})`);
    render();
    if (!state.media.audio || !state.media.video) sendMedia(detail.peer);
  });
  client.addEventListener('peer-left', ({ detail }) => {
    log(`peer-left ${who(detail.peer)} (${detail.reason}, seq ${detail.seq})`);
    state.participants.delete(detail.peer);
    render();
  });
  client.addEventListener('signal', ({ detail }) => {
    const media = detail.data?.media;
    const kind = detail.data?.description?.type ?? (detail.data?.candidate ? `ice candidate ${detail.data.candidate.candidate?.split(' ').slice(4, 8).join(' ') || '(end)'}`
      : media ? `mic ${media.audio ? 'on' : 'off'}, camera ${media.video ? 'on' : 'off'}` : 'data');
    log(`signal from ${who(detail.from)}: ${kind} (seq ${detail.seq})`);
    const p = state.participants.get(detail.from);
    if (media && p) {
      p.media = { audio: media.audio !== false, video: media.video !== false };
      render();
    }
  });
  client.addEventListener('error', ({ detail }) => showError(`error ${detail.code}: ${detail.message}`));
  mesh.addEventListener('track', ({ detail }) => {
    const video = tile(detail.peer).querySelector('video');
    if (video.srcObject !== detail.streams[0]) video.srcObject = detail.streams[0] ?? new MediaStream([detail.track]);
  });
  mesh.addEventListener('connectionstatechange', ({ detail }) => {
    log(`${who(detail.peer)}: connection ${detail.state}`);
    const p = state.participants.get(detail.peer);
    if (p) { p.state = detail.state; render(); }
  });
  mesh.addEventListener('datachannel', ({ detail }) => {
    detail.channel.addEventListener('open', () => { log(`${who(detail.peer)}: chat channel open`); enableChat(true); });
  });
  mesh.addEventListener('message', ({ detail }) => {
    const p = state.participants.get(detail.peer);
    chat(p ? nameOf(detail.peer) : detail.peer, String(detail.data));
  });
  mesh.addEventListener('error', ({ detail }) => log(`${who(detail.peer)}: ${detail.error?.code ?? detail.error?.name}: ${detail.error?.message}`, 'error'));
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
  $('preview').hidden = false;
  $('mic-select').disabled = false; $('camera-select').disabled = false;
}

// --- Camera and microphone: a preview before joining, the device picker, the toggles.

// (Re)opens the camera and microphone picked in the selects and shows them.
async function startPreview() {
  const pick = (id) => ($(id).value ? { deviceId: { exact: $(id).value } } : true);
  const old = state.stream;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: pick('camera-select'), audio: pick('mic-select') });
  } catch (err) {
    log(`no camera/microphone (${err.name}); the call goes on without media`, 'error');
    state.stream = new MediaStream();
  }
  for (const track of old?.getTracks() ?? []) track.stop();
  $('preview').srcObject = state.stream;
  applyMedia();
  await listDevices();
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  for (const [id, kind, track] of [['mic-select', 'audioinput', state.stream.getAudioTracks()[0]],
    ['camera-select', 'videoinput', state.stream.getVideoTracks()[0]]]) {
    const current = track?.getSettings().deviceId;
    $(id).replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) =>
      Object.assign(document.createElement('option'), { value: d.deviceId, textContent: d.label || `${kind} ${i + 1}`, selected: d.deviceId === current })));
    $(id).hidden = $(id).options.length === 0;
  }
}

// The toggles act on the tracks themselves: a disabled track sends silence
// or black frames, so nothing needs renegotiating.
function applyMedia() {
  for (const t of state.stream?.getAudioTracks() ?? []) t.enabled = state.media.audio;
  for (const t of state.stream?.getVideoTracks() ?? []) t.enabled = state.media.video;
  for (const [id, on, what] of [['mic', state.media.audio, 'Mic'], ['camera', state.media.video, 'Camera']]) {
    $(id).setAttribute('aria-pressed', String(on));
    $(id).textContent = `${what} ${on ? 'on' : 'off'}`;
  }
}

// Tells the others (`to` null: everyone) what this page sends, so their tiles say so.
function sendMedia(to) {
  if (!state.client || !state.me) return;
  state.client.signal(to, { media: state.media }).catch((err) => log(`media state not sent: ${err.code}`, 'error'));
}

function toggle(kind) {
  state.media = { ...state.media, [kind]: !state.media[kind] };
  applyMedia();
  log(`${kind === 'audio' ? 'microphone' : 'camera'} ${state.media[kind] ? 'on' : 'off'}`);
  if (state.me) { render(); sendMedia(null); }
}

async function copyInvite() {
  const link = inviteLink();
  $('invite-link').value = link;
  try {
    await navigator.clipboard.writeText(link);
    $('invite').textContent = 'Copied';
  } catch {
    // No clipboard (an insecure origin, or denied): the link is selected to copy by hand.
    $('invite-link').select();
    $('invite').textContent = 'Copy it from the box';
  }
  setTimeout(() => { $('invite').textContent = 'Copy invite link'; }, 2000);
}

$('mic').addEventListener('click', () => toggle('audio'));
$('camera').addEventListener('click', () => toggle('video'));
const repreview = () => { state.previewing = (state.previewing ?? Promise.resolve()).then(startPreview); };
$('mic-select').addEventListener('change', repreview);
$('camera-select').addEventListener('change', repreview);
$('invite').addEventListener('click', copyInvite);
$('room').addEventListener('input', () => { $('invite-link').value = inviteLink(); });
$('invite-link').value = inviteLink();
if (params.get('preview') !== 'off') state.previewing = startPreview();

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
