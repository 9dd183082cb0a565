// timeline.js: a room's history drawn as an SVG sequence diagram, one lane per
// peer and one row per event, for the admin page (/admin/) and the offline
// report of `sigstream history ROOM --format html`. Dependency-free ES module.
//
// The report pastes this file verbatim into an inline module script, so the
// text here must never contain a closing script tag, an HTML comment opener or
// a template placeholder (two opening braces). Event fields are hostile text:
// they reach the page only through textContent and attribute values, never as
// markup.

const SVG = 'http://www.w3.org/2000/svg';
const GUTTER = 148; // px: seq and time column, sticky on the left
const LANE = 168; // px per peer lane
const HEAD = 60; // px: lane headers, sticky on top
const ROW = 28; // px per event
const PAD_RIGHT = 280; // px past the last lane, room for the labels of its arrows
const CHAR = 6.7; // px per character of the 11px monospace labels
const ARROW_Y = 19; // arrow line, within a row
const LABEL_MAX = 96; // characters of a label, at most
// Full-width rows and open lifelines are drawn this long and clipped by the
// svg element. Not "100%": lengths relative to the viewport make the browser
// lay out every row again whenever the diagram grows by one.
const FAR = 10_000_000;
// Rows per svg element. Each chunk is sized once, for all of its rows: a
// growing svg element makes the browser lay out all of its content again, so
// one svg for the whole history makes every add cost as much as the history.
const CHUNK = 200;
const LABEL_Y = 12; // label baseline, within a row

const KINDS = new Set(['join', 'leave', 'signal', 'resume', 'unreadable']);

/** HH:MM:SS.mmm of an RFC 3339 time as written (UTC), or '' when there is none. */
export function clockTime(time) {
  if (typeof time !== 'string') return '';
  const m = /T(\d\d:\d\d:\d\d)(?:\.(\d+))?/.exec(time);
  if (m) return `${m[1]}.${(m[2] ?? '').padEnd(3, '0').slice(0, 3)}`;
  const d = new Date(time);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(11, 23);
}

/** offer, answer, candidate or data: the colour class of a signal, from its summary. */
export function signalCategory(summary) {
  const s = typeof summary === 'string' ? summary.trimStart() : '';
  if (s.startsWith('offer')) return 'offer';
  if (s.startsWith('answer') || s.startsWith('pranswer')) return 'answer';
  if (s.startsWith('candidate') || s.startsWith('end-of-candidates')) return 'candidate';
  return 'data';
}

const str = (v) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));
const clip = (s, max) => (s.length <= max ? s : max <= 1 ? '…' : `${s.slice(0, max - 1)}…`);
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const peerName = (meta) => (isObject(meta) && meta.name !== undefined && meta.name !== null ? str(meta.name) : '');
const summaryOf = (ev) => (typeof ev.summary === 'string' ? ev.summary : ev.data === undefined ? '' : `${str(ev.data).length} bytes`);

/** One line describing an event, for tooltips and headings. */
// `nameOf(peer)`: the name of a peer's join, or '' (then the id is shown).
export function describeEvent(ev, nameOf = () => '') {
  if (!isObject(ev)) return 'not an event';
  const seq = ev.seq === undefined ? '?' : str(ev.seq);
  const who = (peer) => nameOf(str(peer)) || str(peer);
  switch (ev.kind) {
    case 'join': return `seq ${seq} · ${str(ev.peer)} joined${peerName(ev.meta) ? ` as “${peerName(ev.meta)}”` : ''} on ${str(ev.instance) || '?'}`;
    case 'leave': return `seq ${seq} · ${who(ev.peer)} left (${str(ev.reason) || 'no reason'})`;
    case 'signal': return `seq ${seq} · ${who(ev.from)} → ${ev.to === undefined || ev.to === null ? 'all' : who(ev.to)} · ${summaryOf(ev)}`;
    case 'resume': return `seq ${seq} · ${who(ev.peer)} reconnected (resume) on ${str(ev.instance) || '?'}`;
    case 'unreadable': return `seq ${seq} · unreadable stored event (${str(ev.size) || '?'} bytes)`;
    default: return `seq ${seq} · unknown kind “${str(ev.kind)}”`;
  }
}

// The SDP text a signal carries, in the shapes common clients send
// (description.sdp, sdp.sdp, or sdp as a string), or ''.
function sdpOf(data) {
  if (!isObject(data)) return '';
  for (const v of [data.description?.sdp, data.sdp?.sdp, data.sdp]) if (typeof v === 'string') return v;
  return '';
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * Fills `container` with the details of one event: a heading, the main
 * fields, the SDP (if any) as text, and the whole event as pretty JSON.
 * @param {HTMLElement} container
 * @param {object|null} ev null shows a hint
 */
// `nameOf(peer)`: the name of a peer's join, or '' (the timeline's
// nameOf): peers are shown as "ana (p3Xk…)" where there is one.
export function renderEventDetails(container, ev, nameOf = () => '') {
  container.classList.add('tl-details');
  const named = (peer) => {
    if (peer === undefined || peer === null || peer === '') return peer;
    const name = nameOf(str(peer));
    return name ? `${name} (${str(peer)})` : peer;
  };
  if (!ev) {
    container.replaceChildren(el('p', 'tl-details-hint', 'Click a row or an arrow of the timeline to see the event here.'));
    return;
  }
  const heading = el('h3', 'tl-details-title', describeEvent(ev, nameOf));
  const fields = el('dl', 'tl-details-fields');
  const add = (name, value) => {
    if (value === undefined || value === null || value === '') return;
    fields.append(el('dt', '', name), el('dd', '', str(value)));
  };
  if (isObject(ev)) {
    add('seq', ev.seq);
    add('kind', ev.kind);
    add('time', ev.time);
    add('room', ev.room);
    add('instance', ev.instance);
    add('peer', named(ev.peer));
    if (ev.kind === 'join') add('name', peerName(ev.meta));
    add('reason', ev.reason);
    add('from', named(ev.from));
    if (ev.kind === 'signal') add('to', ev.to === undefined || ev.to === null ? 'everyone else (broadcast)' : named(ev.to));
    add('summary', ev.summary);
    add('size', ev.size === undefined ? undefined : `${str(ev.size)} bytes`);
  }
  const parts = [heading, fields];
  const sdp = isObject(ev) && ev.kind === 'signal' ? sdpOf(ev.data) : '';
  if (sdp) {
    const box = el('details', 'tl-details-sdp');
    box.append(el('summary', '', `SDP (${sdp.split(/\r?\n/).filter(Boolean).length} lines)`), el('pre', 'tl-pre', sdp.replace(/\r\n/g, '\n')));
    parts.push(box);
  }
  const copy = el('button', 'tl-copy', 'Copy JSON');
  copy.type = 'button';
  const json = JSON.stringify(ev, null, 2) ?? String(ev);
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(json);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Copy failed';
    }
    setTimeout(() => { copy.textContent = 'Copy JSON'; }, 1500);
  });
  const jsonHead = el('div', 'tl-details-jsonhead');
  jsonHead.append(el('span', '', 'event JSON'), copy);
  parts.push(jsonHead, el('pre', 'tl-pre tl-json', json));
  container.replaceChildren(...parts);
}

function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (parent) parent.append(e);
  return e;
}

function svgText(parent, x, y, cls, text, attrs = {}) {
  const t = svg('text', { x, y, class: cls, ...attrs }, parent);
  t.textContent = text;
  return t;
}

function tooltip(parent, text) {
  const t = svg('title', {}, parent);
  t.textContent = text;
  return t;
}

/**
 * Creates a timeline in `container` (its children are replaced).
 *
 * Rows (`.tl-row`, one per event) carry data-seq, data-kind and data-row (the
 * index in `events`); lane headers (`.tl-lane-head`) carry data-peer; arrows
 * (`.tl-arrow`) carry data-from and data-to (a broadcast draws one arrow per
 * lane alive at that moment, each with data-broadcast, or a single stub with
 * data-to="*" when nobody else is there). The selected row and its gutter
 * cell (`.tl-cell`) have the class tl-selected.
 *
 * @param {HTMLElement} container
 * @param {object} [options]
 * @param {(event: object) => void} [options.onSelect] called with the clicked event
 * @param {boolean} [options.follow] keep the newest row in view while the view
 *   is scrolled to the bottom
 */
export function createTimeline(container, { onSelect = () => {}, follow = false } = {}) {
  const events = [];
  const rows = []; // {ev, row, cell}
  const lanes = new Map(); // peer -> lane
  // A lane on an arrow's label: its peer's name, or the start of its id.
  const laneName = (lane) => lane.name || `${lane.peer.slice(0, 7)}…`;
  const alive = new Set(); // lanes present right now, in order of arrival
  const rowBySeq = new Map();
  let selected = -1;
  let stickToBottom = follow;
  let followPending = false;

  container.classList.add('sigstream-timeline');
  const legend = el('div', 'tl-legend');
  for (const [cls, text] of [['offer', 'offer'], ['answer', 'answer'], ['candidate', 'candidate'], ['data', 'other signal'], ['join', 'join'], ['leave', 'leave'], ['unreadable', 'unreadable']])
    legend.append(el('span', `tl-key tl-key-${cls}`, text));
  const scroll = el('div', 'tl-scroll');
  scroll.tabIndex = 0;
  scroll.setAttribute('role', 'region');
  scroll.setAttribute('aria-label', 'room timeline: arrow keys move between events');
  const headRow = el('div', 'tl-headrow');
  const corner = svg('svg', { class: 'tl-corner', width: GUTTER, height: HEAD });
  svgText(corner, 56, HEAD - 10, 'tl-corner-text', 'seq', { 'text-anchor': 'end' });
  svgText(corner, 64, HEAD - 10, 'tl-corner-text', 'time (UTC)');
  const head = svg('svg', { class: 'tl-head', width: PAD_RIGHT, height: HEAD });
  headRow.append(corner, head);
  const bodyRow = el('div', 'tl-bodyrow');
  const gutter = el('div', 'tl-gutter');
  gutter.style.width = `${GUTTER}px`;
  const body = el('div', 'tl-body');
  bodyRow.append(gutter, body);
  const chunks = []; // {bodyBox, bodySvg, lifelines, rows, gutterSvg}
  let laneCap = 0; // lanes the chunks are wide enough for
  const empty = el('p', 'tl-empty', 'No events yet.');
  scroll.append(headRow, bodyRow, empty);
  container.replaceChildren(legend, scroll);

  const laneX = (lane) => lane.col * LANE + LANE / 2;

  const chunkWidth = () => laneCap * LANE + PAD_RIGHT;

  // The chunk of row `index`, created (with the lifelines of everyone
  // present going on through it) when the row is its first.
  function chunkOf(index) {
    const n = Math.floor(index / CHUNK);
    while (chunks.length <= n) {
      const height = `${CHUNK * ROW}px`;
      const bodyBox = el('div', 'tl-chunk');
      const bodySvg = svg('svg', { width: chunkWidth(), height: CHUNK * ROW });
      bodyBox.style.width = `${chunkWidth()}px`;
      bodyBox.style.height = height;
      bodyBox.append(bodySvg);
      const gutterBox = el('div', 'tl-chunk');
      const gutterSvg = svg('svg', { width: GUTTER, height: CHUNK * ROW });
      gutterBox.style.height = height;
      gutterBox.append(gutterSvg);
      const chunk = { bodyBox, bodySvg, gutterSvg, lifelines: svg('g', { class: 'tl-lifelines' }, bodySvg), rows: svg('g', { class: 'tl-rows' }, bodySvg) };
      chunks.push(chunk);
      body.append(bodyBox);
      gutter.append(gutterBox);
      for (const lane of alive) lane.life = lifeline(chunk, lane, 0, FAR, 'tl-life');
    }
    return chunks[n];
  }

  function lifeline(chunk, lane, y1, y2, cls) {
    const x = laneX(lane);
    return svg('line', { class: cls, x1: x, x2: x, y1, y2, 'data-peer': lane.peer }, chunk.lifelines);
  }

  function resize() {
    if (lanes.size > laneCap) {
      laneCap = Math.ceil((lanes.size + 1) / 8) * 8;
      for (const c of chunks) {
        c.bodySvg.setAttribute('width', chunkWidth());
        c.bodyBox.style.width = `${chunkWidth()}px`;
      }
    }
    const width = lanes.size * LANE + PAD_RIGHT;
    head.setAttribute('width', width);
    body.style.width = `${width}px`;
    body.style.height = gutter.style.height = `${rows.length * ROW}px`;
  }

  // y: within the chunk of row `index`.
  function startLife(lane, index, y) {
    lane.life = lifeline(chunkOf(index), lane, y, FAR, 'tl-life');
    lane.gone = '';
    alive.add(lane);
    lane.head.g.classList.remove('tl-gone');
    renderHead(lane);
  }

  function endLife(lane, y, reason) {
    if (lane.life) lane.life.setAttribute('y2', y);
    lane.life = null;
    lane.gone = reason || 'left';
    alive.delete(lane);
    lane.head.g.classList.add('tl-gone');
    renderHead(lane);
  }

  function renderHead(lane) {
    const { name, id, inst, title } = lane.head;
    const label = lane.name || lane.peer;
    name.textContent = clip(label, 20);
    id.textContent = lane.name ? clip(lane.peer, 22) : '';
    const where = lane.instances.length ? lane.instances.slice(-2).join(' → ') : 'instance ?';
    inst.textContent = clip(lane.gone ? `${where} · ${lane.gone}` : where, 24);
    title.textContent = `${label}${lane.name ? ` (${lane.peer})` : ''}\ninstance: ${lane.instances.join(', ') || 'unknown'}${lane.gone ? `\nleft: ${lane.gone}` : ''}`;
  }

  // The lane of `peer`, created on first sight. A peer first seen other than
  // by its join was in the room before the history starts: its lifeline
  // starts at the top.
  function laneOf(peer, { joining = false } = {}) {
    let lane = lanes.get(peer);
    if (lane) return lane;
    lane = { peer, col: lanes.size, name: '', instances: [], life: null, gone: '' };
    lanes.set(peer, lane);
    const x = lane.col * LANE;
    const g = svg('g', { class: 'tl-lane-head', 'data-peer': peer }, head);
    const title = tooltip(g, '');
    svg('rect', { class: 'tl-lane-card', x: x + 6, y: 6, width: LANE - 12, height: HEAD - 12, rx: 8 }, g);
    const name = svgText(g, x + LANE / 2, 23, 'tl-lane-name', '', { 'text-anchor': 'middle' });
    const id = svgText(g, x + LANE / 2, 36, 'tl-lane-id', '', { 'text-anchor': 'middle' });
    const inst = svgText(g, x + LANE / 2, 48, 'tl-lane-inst', '', { 'text-anchor': 'middle' });
    lane.head = { g, name, id, inst, title };
    resize();
    if (joining) {
      renderHead(lane);
    } else {
      // Present before the history starts (or before the row it is first
      // seen in): a dotted lifeline from the top down to that row.
      const index = rows.length - 1, c = Math.floor(index / CHUNK), y = (index % CHUNK) * ROW;
      for (let i = 0; i < c; i++) lifeline(chunks[i], lane, 0, FAR, 'tl-life tl-life-pre');
      if (y > 0) lifeline(chunks[c], lane, 0, y, 'tl-life tl-life-pre');
      startLife(lane, index, y);
    }
    return lane;
  }

  // The instances a peer's WebSocket was on: a join says it; a signal (written
  // by the sender's instance) only fills in a lane first seen mid-room.
  function noteInstance(lane, instance, { fromJoin = false } = {}) {
    if (typeof instance !== 'string' || !instance || lane.instances.at(-1) === instance) return;
    if (!fromJoin && lane.instances.length) return;
    lane.instances.push(instance);
    renderHead(lane);
  }

  // An arrow from x1 to x2 (x1 === x2: a loop back to the sender).
  function arrow(parent, x1, x2, cls, from, to, broadcast) {
    const g = svg('g', { class: `tl-arrow ${cls}`, 'data-from': from, 'data-to': to, 'data-broadcast': broadcast ? '1' : undefined }, parent);
    const y = ARROW_Y;
    if (x1 === x2) {
      svg('path', { class: 'tl-arrow-line', d: `M${x1} ${y - 6} h22 v10 h-18` }, g);
      svg('path', { class: 'tl-arrow-head', d: `M${x1} ${y + 4} l8 -4 v8 z` }, g);
    } else {
      const dir = Math.sign(x2 - x1);
      svg('line', { class: 'tl-arrow-line', x1, y1: y, x2: x2 - dir * 7, y2: y }, g);
      svg('path', { class: 'tl-arrow-head', d: `M${x2} ${y} l${-dir * 9} -4.5 v9 z` }, g);
    }
    return g;
  }

  function label(parent, x, maxWidth, seq, text, cls = '') {
    const t = svg('text', { class: `tl-label ${cls}`, x, y: LABEL_Y }, parent);
    const s = svg('tspan', { class: 'tl-label-seq' }, t);
    s.textContent = `${seq} `;
    const rest = svg('tspan', {}, t);
    // A row holds one event, so its label may run over the lanes past its
    // arrow, up to the right edge (the halo keeps it readable over lifelines).
    const room = Math.max(maxWidth, lanes.size * LANE + PAD_RIGHT - x - 12);
    rest.textContent = clip(text, Math.max(4, Math.min(LABEL_MAX, Math.floor(room / CHAR)) - s.textContent.length));
    return t;
  }

  function drawSignal(g, ev, seq) {
    const fromPeer = str(ev.from) || '?';
    const from = laneOf(fromPeer);
    noteInstance(from, ev.instance);
    const summary = summaryOf(ev);
    const cat = signalCategory(summary);
    g.classList.add(`tl-c-${cat}`);
    g.dataset.category = cat;
    const x1 = laneX(from);
    const broadcast = ev.to === undefined || ev.to === null;
    if (!broadcast) {
      const to = laneOf(str(ev.to) || '?');
      const x2 = laneX(to);
      arrow(g, x1, x2, `tl-c-${cat}`, from.peer, to.peer, false);
      const left = Math.min(x1, x2);
      label(g, x1 === x2 ? x1 + 28 : left + 8, Math.max(Math.abs(x2 - x1) - 16, 2 * LANE - 16), seq,
        `${laneName(from)} → ${laneName(to)} · ${summary}`);
      return;
    }
    const targets = [...alive].filter((l) => l !== from).sort((a, b) => a.col - b.col);
    if (!targets.length) {
      arrow(g, x1, x1 + 44, `tl-c-${cat} tl-broadcast`, from.peer, '*', true);
      label(g, x1 + 52, 2 * LANE, seq, `${laneName(from)} to all (nobody else) · ${summary}`);
      return;
    }
    for (const t of targets) arrow(g, x1, laneX(t), `tl-c-${cat} tl-broadcast`, from.peer, t.peer, true);
    const xs = targets.map(laneX).concat(x1);
    const left = Math.min(...xs), right = Math.max(...xs);
    label(g, left + 8, Math.max(right - left - 16, 2 * LANE - 16), seq, `${laneName(from)} to all (${targets.length}) · ${summary}`);
  }

  function draw(ev, { batch = false } = {}) {
    const index = rows.length;
    const chunk = chunkOf(index);
    const y = (index % CHUNK) * ROW; // within the chunk
    const seq = isObject(ev) && ev.seq !== undefined && ev.seq !== null ? str(ev.seq) : '';
    const kind = isObject(ev) && KINDS.has(ev.kind) ? ev.kind : 'unknown';
    const g = svg('g', { class: `tl-row tl-k-${kind}`, transform: `translate(0 ${y})`, 'data-seq': seq, 'data-kind': kind, 'data-row': index });
    svg('rect', { class: 'tl-bg', x: 0, y: 0, width: FAR, height: ROW }, g);
    tooltip(g, describeEvent(ev, (p) => lanes.get(p)?.name ?? ''));
    events.push(ev);
    rows.push({ ev, row: g, cell: null });
    if (seq) rowBySeq.set(seq, index);

    if (kind === 'join') {
      const lane = laneOf(str(ev.peer) || '?', { joining: true });
      const name = peerName(ev.meta);
      if (name) lane.name = name;
      noteInstance(lane, ev.instance, { fromJoin: true });
      if (!lane.life) startLife(lane, index, y + ROW / 2);
      else renderHead(lane); // joined again while present (a resume elsewhere)
      const x = laneX(lane);
      g.dataset.peer = lane.peer;
      svg('circle', { class: 'tl-join-dot', cx: x, cy: ROW / 2, r: 5.5 }, g);
      label(g, x + 12, LANE + 40, seq, `join${name ? ` “${name}”` : ''}${ev.instance ? ` on ${str(ev.instance)}` : ''}`, 'tl-label-join').setAttribute('y', ROW / 2 + 4);
    } else if (kind === 'leave') {
      const lane = laneOf(str(ev.peer) || '?');
      const reason = str(ev.reason) || 'left';
      endLife(lane, y + ROW / 2, reason);
      const x = laneX(lane);
      g.dataset.peer = lane.peer;
      g.dataset.reason = reason;
      g.classList.add(`tl-reason-${/^[a-z-]+$/.test(reason) ? reason : 'other'}`);
      svg('rect', { class: 'tl-leave-mark', x: x - 6, y: ROW / 2 - 6, width: 12, height: 12, rx: 2 }, g);
      svg('path', { class: 'tl-leave-x', d: `M${x - 3} ${ROW / 2 - 3} l6 6 m0 -6 l-6 6` }, g);
      label(g, x + 12, LANE + 40, seq, `leave · ${reason}`, 'tl-label-leave').setAttribute('y', ROW / 2 + 4);
    } else if (kind === 'signal') {
      drawSignal(g, ev, seq);
    } else if (kind === 'resume') {
      // The connection moved; the peer never left the room.
      const lane = laneOf(str(ev.peer) || '?');
      noteInstance(lane, ev.instance, { fromJoin: true }); // the lane's instance changes
      const x = laneX(lane);
      g.dataset.peer = lane.peer;
      svg('circle', { class: 'tl-resume-dot', cx: x, cy: ROW / 2, r: 4.5 }, g);
      label(g, x + 12, LANE + 40, seq, `resumed${ev.instance ? ` on ${str(ev.instance)}` : ''}`, 'tl-label-join').setAttribute('y', ROW / 2 + 4);
    } else {
      g.classList.add('tl-wide');
      const text = kind === 'unreadable'
        ? `⚠ unreadable stored event · ${str(ev.size) || '?'} bytes could not be decoded`
        : `⚠ unknown event${isObject(ev) ? ` kind “${clip(str(ev.kind), 40)}”` : ''}`;
      svg('rect', { class: 'tl-wide-bg', x: -2, y: 2, width: FAR, height: ROW - 4 }, g);
      svgText(g, 10, ROW / 2 + 4, 'tl-wide-text', text);
    }
    chunk.rows.append(g);

    const cell = svg('g', { class: `tl-cell tl-k-${kind}`, transform: `translate(0 ${y})`, 'data-row': index });
    svg('rect', { class: 'tl-bg', x: 0, y: 0, width: GUTTER, height: ROW }, cell);
    svgText(cell, 56, ROW / 2 + 4, 'tl-seq', clip(seq || '?', 9), { 'text-anchor': 'end' });
    const time = clockTime(isObject(ev) ? ev.time : undefined);
    svgText(cell, 64, ROW / 2 + 4, 'tl-time', time || '—');
    if (isObject(ev) && typeof ev.time === 'string') tooltip(cell, ev.time);
    chunk.gutterSvg.append(cell);
    rows[index].cell = cell;

    if (!batch) resize();
    empty.hidden = true;
    scheduleFollow();
  }

  function scheduleFollow() {
    if (!stickToBottom || followPending) return;
    followPending = true;
    requestAnimationFrame(() => {
      followPending = false;
      if (stickToBottom) scroll.scrollTop = scroll.scrollHeight;
    });
  }

  scroll.addEventListener('scroll', () => {
    if (follow) stickToBottom = scroll.scrollTop + scroll.clientHeight >= scroll.scrollHeight - ROW;
  }, { passive: true });

  function select(index, { reveal = false, notify = true } = {}) {
    if (index < 0 || index >= rows.length) return;
    if (selected >= 0 && rows[selected]) {
      rows[selected].row.classList.remove('tl-selected');
      rows[selected].cell.classList.remove('tl-selected');
    }
    selected = index;
    rows[index].row.classList.add('tl-selected');
    rows[index].cell.classList.add('tl-selected');
    if (reveal) {
      // Keep the row between the sticky header and the bottom edge.
      const top = bodyRow.offsetTop + index * ROW, header = headRow.offsetHeight;
      if (top - header < scroll.scrollTop) scroll.scrollTop = top - header;
      else if (top + ROW > scroll.scrollTop + scroll.clientHeight) scroll.scrollTop = top + ROW - scroll.clientHeight;
    }
    if (notify) onSelect(rows[index].ev);
  }

  function onClick(e) {
    const target = e.target.closest?.('[data-row]');
    if (target) select(Number(target.dataset.row));
  }
  body.addEventListener('click', onClick);
  gutter.addEventListener('click', onClick);
  scroll.addEventListener('keydown', (e) => {
    const step = { ArrowDown: 1, ArrowUp: -1, j: 1, k: -1, PageDown: 10, PageUp: -10 }[e.key];
    if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      select(e.key === 'Home' ? 0 : rows.length - 1, { reveal: true });
    } else if (step) {
      e.preventDefault();
      select(Math.min(rows.length - 1, Math.max(0, (selected < 0 ? (step > 0 ? -1 : rows.length) : selected) + step)), { reveal: true });
    }
  });

  return {
    /** Appends one event (in seq order) and draws it. */
    add(ev) { draw(ev); },
    /** Appends events in order. */
    addAll(list) {
      for (const ev of list) draw(ev, { batch: true });
      resize();
    },
    /** Removes every event and lane (`events` stays the same array, emptied). */
    clear() {
      events.length = 0;
      rows.length = 0;
      lanes.clear();
      alive.clear();
      rowBySeq.clear();
      selected = -1;
      stickToBottom = follow;
      chunks.length = 0;
      body.replaceChildren();
      gutter.replaceChildren();
      for (const g of [...head.children]) g.remove();
      scroll.scrollTop = 0;
      scroll.scrollLeft = 0;
      empty.hidden = false;
      resize();
    },
    /** Selects (highlights, scrolls to, reports through onSelect) the row of `seq`. */
    select(seq) {
      const index = rowBySeq.get(str(seq));
      if (index !== undefined) select(index, { reveal: true });
      return index !== undefined;
    },
    /** The selected event, or null. */
    get selected() { return selected >= 0 ? rows[selected].ev : null; },
    /** Peer ids of the lanes, left to right. */
    get peers() { return [...lanes.keys()]; },
    /** The name of a peer's join, or ''. */
    nameOf(peer) { return lanes.get(peer)?.name ?? ''; },
    /** The events shown, in order (the same array for the timeline's life). */
    events,
    /** Text shown when there are no events. */
    set emptyText(text) { empty.textContent = text; },
  };
}
