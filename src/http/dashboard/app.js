/* Inkwell's live dashboard: vanilla JS, no build step, no outside hosts. Counts come from /api/fleet, refreshed
 * whenever a status event arrives on the SSE stream (/api/events) and every few seconds as a fallback. */
/* global document, window, fetch, sessionStorage, EventSource, setTimeout, clearTimeout, setInterval, CSS */

import { cancelButton, renderAwaiting } from './owner.js';
import { STAGES, STATUSES, WAITING } from './statuses.js';

const KIND = {
  ...Object.fromEntries(WAITING.map((s) => [s, 'waiting'])),
  DONE: 'done',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};
const SVG = 'http://www.w3.org/2000/svg';
const TOKEN_KEY = 'inkwell.apiToken';
const MAX_EVENTS = 60;

const $ = (selector) => document.querySelector(selector);

/** Creates an element with attributes and children (strings become text: nothing is parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children) if (child !== undefined && child !== null) node.append(child);
  return node;
}

// ---- API with the token: on 401, ask for it, keep it for this tab, and try again ----

let token = sessionStorage.getItem(TOKEN_KEY) ?? '';

async function api(path, options = {}) {
  for (;;) {
    const headers = { ...(options.body ? { 'content-type': 'application/json' } : {}) };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(path, { ...options, headers });
    if (res.status !== 401) {
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
      return body;
    }
    const given = window.prompt(token ? 'The API token was refused. API token:' : 'This Inkwell needs its API token:');
    if (given === null) throw new Error('an API token is needed');
    token = given.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
  }
}

// ---- the statechart ----

const W = 150;
const H = 58;
const POS = {
  PENDING: [10, 70],
  GENERATING_IDEAS: [175, 70],
  AWAITING_SELECTION: [340, 70],
  GENERATING_CONTENT: [505, 70],
  GENERATING_IMAGE: [670, 70],
  PUBLISHING: [835, 70],
  DONE: [1000, 70],
  FAILED: [587, 220],
  CANCELLED: [1000, 220],
};
const center = (s, dx = 0.5, dy = 0.5) => [POS[s][0] + W * dx, POS[s][1] + H * dy];

function arrow(d, label, cls = '') {
  const g = el('svg:g', { class: `edge ${cls}` }, el('svg:path', { d, 'marker-end': 'url(#head)' }));
  if (label) g.append(el('svg:text', { x: label[0], y: label[1], class: 'edge-label' }, label[2]));
  return g;
}

function drawChart() {
  const svg = $('#chart');
  svg.setAttribute('viewBox', '0 0 1160 300');
  svg.append(
    el(
      'svg:defs',
      {},
      el(
        'svg:marker',
        { id: 'head', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
        el('svg:path', { d: 'M0,0 L10,5 L0,10 z' }),
      ),
    ),
  );
  const chain = STATUSES.slice(0, 7);
  for (let i = 0; i < chain.length - 1; i++) {
    const [x1, y] = center(chain[i], 1);
    const [x2] = center(chain[i + 1], 0);
    svg.append(arrow(`M${x1},${y} L${x2 - 2},${y}`));
  }
  const [px, py] = center('PENDING', 0.5, 0);
  const [cx, cy] = center('GENERATING_CONTENT', 0.5, 0);
  svg.append(arrow(`M${px},${py} C${px},10 ${cx},10 ${cx},${cy - 2}`, [300, 22, 'created with an idea'], 'skip'));
  for (const s of STAGES) {
    const [x1, y1] = center(s, 0.5, 1);
    const [x2, y2] = center('FAILED', 0.5, 0);
    svg.append(arrow(`M${x1},${y1} L${x2 + (x1 - x2) * 0.15},${y2 - 2}`, null, 'fail'));
  }
  // A select or a retry brings the blog back to PENDING: it waits there for a slot of its store, then resumes.
  const [sx, sy] = center('AWAITING_SELECTION', 0.5, 1);
  const [qx, qy] = center('PENDING', 0.6, 1);
  svg.append(arrow(`M${sx},${sy} C${sx},${sy + 40} ${qx},${qy + 40} ${qx},${qy + 4}`, [150, 160, 'select'], 'select'));
  const [fx, fy] = center('FAILED', 0, 0.5);
  const [rx, ry] = center('PENDING', 0.3, 1);
  svg.append(
    arrow(
      `M${fx},${fy} C${fx - 200},${fy} ${rx},${fy} ${rx},${ry + 4}`,
      [300, 250, 'retry: waits in PENDING, resumes the failed stage'],
      'retry',
    ),
  );
  const [dx, dy] = center('CANCELLED', 0, 0.5);
  svg.append(arrow(`M${dx - 150},${dy} L${dx - 2},${dy}`, [dx - 150, dy - 8, 'cancel (any status)'], 'cancel'));
  for (const s of STATUSES) {
    const [x, y] = POS[s];
    svg.append(
      el(
        'svg:g',
        { class: `node ${KIND[s] ?? 'working'}`, 'data-status': s, id: `node-${s}` },
        el('svg:rect', { x, y, width: W, height: H, rx: 10 }),
        el('svg:text', { x: x + W / 2, y: y + 20, class: 'name' }, s),
        el('svg:text', { x: x + W / 2, y: y + 46, class: 'count', 'data-count': s }, '0'),
      ),
    );
  }
}

// ---- rendering ----

function renderFleet(fleet) {
  let total = 0;
  for (const s of STATUSES) {
    const n = fleet.byStatus[s] ?? 0;
    total += n;
    const count = document.querySelector(`[data-count="${s}"]`);
    if (count.textContent !== String(n)) {
      count.textContent = String(n);
      pulse(s);
    }
    document.getElementById(`node-${s}`).classList.toggle('empty', n === 0);
  }
  const calls = Object.values(fleet.inFlight).reduce((a, b) => a + b, 0);
  $('#summary').textContent = `${total} blogs · ${fleet.transitions} transitions · ${calls} provider calls in flight`;
  const stores = $('#stores');
  stores.replaceChildren();
  for (const [store, counts] of Object.entries(fleet.byStore).sort(([a], [b]) => a.localeCompare(b))) {
    const shown = STATUSES.filter((s) => counts[s] > 0);
    stores.append(
      el(
        'table',
        { class: 'store', 'data-store': store },
        el('caption', {}, store, el('span', { class: 'muted', 'data-store-spend': store }, spendText(store))),
        el('tr', {}, ...shown.map((s) => el('th', {}, s.replace('GENERATING_', 'GEN_')))),
        el('tr', {}, ...shown.map((s) => el('td', { 'data-store-count': s }, String(counts[s])))),
      ),
    );
  }
}

// ---- spend per store: today's (UTC) tokens, images and estimated cost, refreshed at most every 10 s ----

const spend = new Map();
let spendAt = 0;

function spendText(store) {
  const day = spend.get(store);
  if (!day) return '';
  const cost = day.estimatedCostUsd === null ? '' : ` · $${day.estimatedCostUsd.toFixed(4)}`;
  return ` · today ${day.inputTokens + day.outputTokens} tokens, ${day.images} images${cost}`;
}

async function refreshSpend(stores) {
  if (Date.now() - spendAt < 10_000) return;
  spendAt = Date.now();
  const today = new Date().toISOString().slice(0, 10);
  for (const store of stores) {
    const usage = await api(`/api/stores/${encodeURIComponent(store)}/usage?from=${today}&to=${today}`);
    spend.set(store, usage.days[0] ?? { inputTokens: 0, outputTokens: 0, images: 0, estimatedCostUsd: 0 });
    const cell = document.querySelector(`[data-store-spend="${CSS.escape(store)}"]`);
    if (cell) cell.textContent = spendText(store);
  }
}

function pulse(status) {
  const node = document.getElementById(`node-${status}`);
  node.classList.remove('pulse');
  void node.getBoundingClientRect();
  node.classList.add('pulse');
}

function blogLink(blogId, instanceId) {
  return el(
    'a',
    {
      href: '#',
      class: 'blog',
      'data-blog': blogId,
      onclick: (e) => (e.preventDefault(), void showTimeline(blogId, instanceId)),
    },
    blogId,
  );
}

function addEvent(event) {
  const time = new Date(event.at).toLocaleTimeString();
  const detail = event.error ? ` ${event.error.code}` : event.post?.url ? ` ${event.post.url}` : '';
  const item = el(
    'li',
    { class: `status-${event.status}` },
    el('time', {}, time),
    ' ',
    blogLink(event.blogId, event.instanceId),
    el('span', { class: 'muted' }, ` ${event.instanceId} `),
    `${event.previousStatus ?? 'NEW'} → `,
    el('b', {}, event.status),
    detail,
  );
  const list = $('#events');
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

async function showTimeline(blogId, instanceId) {
  $('#timeline-title').textContent = `${blogId} (${instanceId})`;
  const list = $('#timeline');
  list.replaceChildren(el('li', { class: 'muted' }, 'loading…'));
  const query = `instanceId=${encodeURIComponent(instanceId)}`;
  const { items } = await api(`/api/blogs/${encodeURIComponent(blogId)}/events?${query}`);
  // The blog now: what it spent, and why it waits when something other than a slot holds it back.
  const blog = await api(`/api/blogs/${encodeURIComponent(blogId)}?${query}`);
  const spent = blog.usage
    ? `spent ${blog.usage.inputTokens} input + ${blog.usage.outputTokens} output tokens, ${blog.usage.images} images`
    : '';
  const waits = blog.waiting ? ` · waits: ${blog.waiting.message}` : '';
  $('#timeline-title').textContent = `${blogId} (${instanceId})${spent ? ` · ${spent}` : ''}${waits}`;
  list.replaceChildren(
    ...items.map((e) =>
      el(
        'li',
        { class: `status-${e.status}` },
        el('span', { class: 'seq' }, `#${e.seq}`),
        el('time', {}, new Date(e.at).toLocaleTimeString()),
        ' ',
        el('b', {}, e.status),
        e.idea ? el('span', { class: 'muted' }, ` “${e.idea.title}”`) : null,
        e.ideas && e.status === 'AWAITING_SELECTION'
          ? el('span', { class: 'muted' }, ` ${e.ideas.length} ideas`)
          : null,
        e.post ? el('span', {}, ` post ${e.post.url ?? e.post.id}`) : null,
        e.error ? el('span', { class: 'error' }, ` ${e.error.stage} ${e.error.code}: ${e.error.message}`) : null,
      ),
    ),
  );
  const last = items[items.length - 1];
  const owner = { api, el, onChange: () => (scheduleRefresh(), void reopenTimeline()) };
  $('#timeline-actions').replaceChildren(last ? (cancelButton(owner, { blogId, instanceId }, last.status) ?? '') : '');
  shownTimeline = { blogId, instanceId };
  $('#timeline-panel').scrollIntoView({ block: 'nearest' });
}

/** The blog whose timeline is open: shown again when its events change. */
let shownTimeline;
const reopenTimeline = () => (shownTimeline ? showTimeline(shownTimeline.blogId, shownTimeline.instanceId) : undefined);

async function renderFailed() {
  const { items } = await api('/api/blogs?status=FAILED&limit=50');
  const body = $('#failed tbody');
  body.replaceChildren(
    ...items.map((b) =>
      el(
        'tr',
        { 'data-failed': b.blogId },
        el('td', {}, blogLink(b.blogId, b.instanceId)),
        el('td', {}, b.instanceId),
        el('td', {}, b.error?.stage ?? ''),
        el(
          'td',
          { class: 'error' },
          b.error ? `${b.error.code}: ${b.error.message} (${b.error.attempts} attempts)` : '',
        ),
        el(
          'td',
          {},
          el('button', { type: 'button', class: 'retry', onclick: (e) => void retry(e.target, b) }, 'Retry'),
        ),
      ),
    ),
  );
  $('#failed-empty').hidden = items.length > 0;
}

async function retry(button, blog) {
  button.disabled = true;
  try {
    await api(`/api/blogs/${encodeURIComponent(blog.blogId)}/retry`, {
      method: 'POST',
      body: JSON.stringify({ instanceId: blog.instanceId }),
    });
    button.textContent = 'Retrying…';
  } catch (err) {
    button.disabled = false;
    button.textContent = 'Retry';
    window.alert(`Retry failed: ${err.message}`);
  }
  scheduleRefresh();
}

// ---- create form ----

$('#create').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = new window.FormData(e.target);
  const get = (name) => String(form.get(name) ?? '').trim();
  const keywords = get('keywords')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  const body = {
    instanceId: get('instanceId'),
    ...(get('topic') ? { topic: get('topic') } : {}),
    ...(get('ideaTitle') ? { idea: { title: get('ideaTitle') } } : {}),
    ...(keywords.length ? { keywords } : {}),
  };
  const out = $('#create-result');
  try {
    const blog = await api('/api/blogs', { method: 'POST', body: JSON.stringify(body) });
    out.textContent = `created ${blog.blogId} (${blog.status})`;
  } catch (err) {
    out.textContent = `not created: ${err.message}`;
  }
});

// ---- live updates ----

let refreshTimer;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), 150);
}

async function refresh() {
  try {
    const fleet = await api('/api/fleet');
    renderFleet(fleet);
    await refreshSpend(Object.keys(fleet.byStore)).catch(() => undefined); // spend is extra: never blocks the rest
    await renderFailed();
    await renderAwaiting({ api, el, blogLink, onChange: scheduleRefresh });
  } catch (err) {
    $('#summary').textContent = `cannot load: ${err.message}`;
  }
}

function connect() {
  const badge = $('#stream');
  const source = new EventSource(`/api/events${token ? `?token=${encodeURIComponent(token)}` : ''}`);
  source.addEventListener('open', () => ((badge.textContent = 'live'), badge.classList.add('live')));
  source.addEventListener('error', () => ((badge.textContent = 'reconnecting'), badge.classList.remove('live')));
  source.addEventListener('status', (msg) => {
    const event = JSON.parse(msg.data);
    addEvent(event);
    scheduleRefresh();
    if (shownTimeline?.blogId === event.blogId) void reopenTimeline();
  });
}

drawChart();
await refresh(); // asks for the token first when one is needed, so the stream below can carry it
connect();
setInterval(() => void refresh(), 5000);
