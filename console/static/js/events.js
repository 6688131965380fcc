// The events view: every filter of GET /events in a form whose values
// are the URL's query string, a page of events newest first, keyset
// paging with the API's cursors, and the live tail.
import * as api from './api.js';
import {add, h, replace, tableRow} from './dom.js';
import {fromLocalInput, micros, timeEl, toLocalInput, zoneName} from './format.js';
import {startTail} from './tail.js';

const textFilters = [
  ['actor', 'Actor', 'alice@acme.com'],
  ['action', 'Action', 'login'],
  ['resource_type', 'Resource type', 'security'],
  ['resource_id', 'Resource id', 'session-123'],
  ['event_type', 'Event type', 'security.login'],
  ['correlation_id', 'Correlation id', ''],
  ['entity_key', 'Entity key', 'org:acme'],
];
const timeFilters = [
  ['since', 'Received from'],
  ['until', 'Received before'],
  ['occurred_since', 'Occurred from'],
  ['occurred_until', 'Occurred before'],
];
const pageSizes = ['25', '50', '100', '200', '500'];
const defaultLimit = '100';
const maxRows = 1000; // rows the live tail lets the table grow to

// filterParams are the filters of a query: every GET /events parameter
// but the cursor and the page size.
export function filterParams(params) {
  const out = new URLSearchParams();
  for (const [k] of [...textFilters, ...timeFilters]) {
    if (params.has(k) && (params.get(k) !== '' || k === 'resource_id')) out.set(k, params.get(k));
  }
  return out;
}

// searchHref is the console's URL for the events matching filters.
export function searchHref(filters) {
  const s = filters.toString();
  return s ? `/?${s}` : '/';
}

// eventHref is the console's URL of one event.
export function eventHref(id) {
  return `/?${new URLSearchParams({event: id})}`;
}

export const columns = ['Received', 'Actor', 'Action', 'Resource', 'Event type', 'Correlation id', 'Entity'];

// eventRow is one event as a table row; the values that are filters link
// to the events sharing them, with the current filters kept.
export function eventRow(e, filters = new URLSearchParams()) {
  const by = (name, value) => {
    if (!value) return '';
    const f = new URLSearchParams(filters);
    f.set(name, value);
    // Out of the tab order: a shortcut for the form's filter, and a row
    // has one stop for the keyboard, its link to the event.
    return h('a', {href: searchHref(f), 'data-nav': true, class: 'filter', tabindex: '-1',
      title: `Events with ${name.replace('_', ' ')} ${value}`}, value);
  };
  return tableRow(columns, {
    attrs: {dataset: {id: e.id, ts: e.timestamp}},
    cells: [
      h('a', {href: eventHref(e.id), 'data-nav': true, class: 'open'}, timeEl(e.timestamp, {compact: true})),
      by('actor', e.actor),
      by('action', e.action),
      h('span', {class: 'resource'}, `${e.resource_type}/${e.resource_id}`),
      by('event_type', e.event_type),
      by('correlation_id', e.correlation_id),
      by('entity_key', e.entity_key),
    ],
  });
}

export function eventsView(root, params, ctx) {
  const filters = filterParams(params);
  const limit = pageSizes.includes(params.get('limit')) ? params.get('limit') : defaultLimit;
  const cursor = params.get('cursor') ?? '';
  const back = history.state?.back ?? []; // cursors of the newer pages we came through ('' the first)
  const firstPage = cursor === '';
  const canTail = firstPage && !filters.has('until'); // a tail shows what comes after the newest

  const form = searchForm(filters, limit, ctx);
  const summary = h('p', {id: 'summary', class: 'summary', 'aria-live': 'polite'}, 'Searching…');
  const tailButton = h('button', {type: 'button', id: 'tail', 'aria-pressed': 'false', title: 'Show new events as they are stored; press again to pause'}, 'Live tail');
  const tailState = h('span', {id: 'tail-state', class: 'tail-state', 'aria-live': 'polite'});
  const tbody = h('tbody');
  const tableEl = h('table', {class: 'events', id: 'events'},
    h('caption', {class: 'sr-only'}, 'Events, newest first'),
    h('thead', {}, h('tr', {}, columns.map((c, i) => h('th', {scope: 'col'}, i === 0 ? [c, ' ', h('span', {class: 'zone'}, `(${zoneName})`)] : c)))),
    tbody);
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages'});
  add(root, h('h1', {}, 'Events'), form,
    h('div', {class: 'toolbar'}, summary, canTail ? h('div', {class: 'tail'}, tailButton, tailState) : null),
    h('div', {class: 'scroll'}, tableEl), pager);

  if (!ctx.can('read')) {
    replace(summary, h('span', {class: 'error'}, `This API key may not read events (it may: ${ctx.whoami.scopes.join(', ') || 'nothing'}).`));
    return null;
  }

  let tail = null;
  const seen = new Set();
  // floor is the oldest event shown when older pages exist: the tail
  // adds nothing at or below it, since such events belong to those pages.
  let floor = null;
  let shown = 0;
  let total = null;
  // lastSeq is the newest place in the log among the events shown: the
  // tail starts after it, so nothing stored since the page loaded is
  // missed.
  let lastSeq = null;

  const say = () => {
    const start = back.length * Number(limit);
    const range = shown === 0 ? 'none shown' : (firstPage || back.length ? `${start + 1}–${start + shown} shown` : `${shown} shown`);
    summary.textContent = total === null ? `${range}` : `${total} ${total === 1 ? 'event matches' : 'events match'}, ${range}`;
  };

  const setTail = on => {
    tail?.stop();
    tail = null;
    // A toggle keeps its name; aria-pressed (and the state beside it) says
    // whether it is on.
    tailButton.setAttribute('aria-pressed', String(on));
    const url = new URLSearchParams(location.search);
    if (on) url.set('live', '1');
    else url.delete('live');
    history.replaceState(history.state, '', url.size ? `/?${url}` : '/');
    if (!on) {
      tailState.textContent = shown ? 'paused' : '';
      return;
    }
    tailState.textContent = 'starting…';
    tail = startTail({
      params: filters,
      seen,
      after: lastSeq,
      keep: e => !floor || newestFirst(e, floor) < 0,
      onEvents: events => insert(events),
      onState: (how, detail) => {
        tailState.textContent = how === 'retrying' ? `retrying (${detail})` : `${how}, live`;
      },
      onError: err => {
        tailState.textContent = `stopped: ${err.message}`;
        tailButton.setAttribute('aria-pressed', 'false');
        tail = null;
      },
    });
  };
  tailButton.addEventListener('click', () => setTail(!tail));

  // insert puts events from the tail in their places, newest first,
  // marked new until the next ones come.
  const insert = events => {
    for (const old of tbody.querySelectorAll('tr.fresh')) old.classList.remove('fresh');
    tbody.querySelector('tr.empty')?.remove();
    const sorted = [...events].sort(newestFirst);
    for (const e of sorted) {
      const r = eventRow(e, filters);
      r.classList.add('fresh');
      let at = tbody.firstElementChild;
      while (at && newestFirst(e, {timestamp: at.dataset.ts, id: at.dataset.id}) > 0) at = at.nextElementSibling;
      tbody.insertBefore(r, at);
    }
    shown += events.length;
    if (total !== null) total += events.length;
    while (shown > maxRows) {
      seen.delete(tbody.lastElementChild.dataset.id);
      tbody.lastElementChild.remove();
      shown--;
      older = ''; // the next page's cursor no longer follows the last row
      floor = position(tbody.lastElementChild);
    }
    say();
    renderPager();
  };

  let older = '';
  const renderPager = () => {
    const links = [];
    const base = new URLSearchParams(filters);
    if (limit !== defaultLimit) base.set('limit', limit);
    if (!firstPage) {
      links.push(h('a', {href: searchHref(base), 'data-nav': true}, '« Newest'));
      if (back.length) {
        const prev = new URLSearchParams(base);
        const c = back.at(-1);
        if (c) prev.set('cursor', c);
        links.push(h('a', {href: searchHref(prev), class: 'newer', rel: 'prev', on: {click: e => go(e, prev, back.slice(0, -1))}}, '‹ Newer'));
      }
    }
    if (older) {
      const next = new URLSearchParams(base);
      next.set('cursor', older);
      links.push(h('a', {href: searchHref(next), class: 'older', rel: 'next', on: {click: e => go(e, next, [...back, cursor])}}, 'Older ›'));
    }
    replace(pager, links);
  };
  const go = (e, q, backStack) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    ctx.navigate(searchHref(q), {state: {back: backStack}});
  };

  (async () => {
    const q = new URLSearchParams(filters);
    q.set('limit', limit);
    if (cursor) q.set('cursor', cursor);
    const countQ = filters.toString();
    api.request('GET', `/events/count${countQ ? `?${countQ}` : ''}`, {signal: ctx.signal})
      .then(({data}) => { total = data.count; say(); }, () => {});
    try {
      const {data, headers} = await api.request('GET', `/events?${q}`, {signal: ctx.signal});
      for (const e of data) {
        seen.add(e.id);
        if (typeof e.seq === 'number' && (lastSeq === null || e.seq > lastSeq)) lastSeq = e.seq;
        tbody.append(eventRow(e, filters));
      }
      shown = data.length;
      older = api.nextCursor(headers);
      if (older) floor = position(tbody.lastElementChild);
      if (!data.length) tbody.append(h('tr', {class: 'empty'}, h('td', {colspan: columns.length}, 'No event matches.')));
      say();
      renderPager();
      if (params.get('live') === '1' && canTail) setTail(true);
    } catch (err) {
      if (api.isAbort(err)) return;
      replace(summary, h('span', {class: 'error', role: 'alert'}, err.message));
    }
  })();

  return () => tail?.stop();
}

// position is the (received, id) of the event a row shows.
function position(row) {
  return {timestamp: row.dataset.ts, id: row.dataset.id};
}

// newestFirst orders events by (received, id) descending, as the API does.
function newestFirst(a, b) {
  const d = micros(b.timestamp) - micros(a.timestamp);
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

// searchForm is the filters as a form; submitting it shows its URL.
function searchForm(filters, limit, ctx) {
  const textInputs = textFilters.map(([name, label, example]) => field(name, label,
    h('input', {id: `f-${name}`, name, type: 'search', value: filters.get(name) ?? '', placeholder: example ? `e.g. ${example}` : null,
      autocomplete: 'off', spellcheck: 'false', maxlength: '255'})));
  const timeInputs = timeFilters.map(([name, label]) => field(name, label,
    h('input', {id: `f-${name}`, name, type: 'datetime-local', step: '1', value: toLocalInput(filters.get(name))}), 'time'));
  const size = h('select', {id: 'f-limit', name: 'limit'},
    pageSizes.map(s => h('option', {value: s, selected: s === limit}, s)));
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Search events', action: '/', method: 'get',
    on: {submit: e => {
      e.preventDefault();
      const q = new URLSearchParams();
      for (const [name] of textFilters) {
        const v = form.elements[name].value.trim();
        if (v) q.set(name, v);
      }
      for (const [name] of timeFilters) {
        const v = fromLocalInput(form.elements[name].value);
        if (v) q.set(name, v);
      }
      if (size.value !== defaultLimit) q.set('limit', size.value);
      ctx.navigate(searchHref(q));
    }}},
  h('div', {class: 'grid'}, textInputs, timeInputs, field('limit', 'Per page', size)),
  h('p', {class: 'hint'}, `Filters match exactly (actor ignores case). Times are in ${zoneName}.`),
  h('div', {class: 'actions'},
    h('button', {type: 'submit'}, 'Search'),
    h('a', {href: '/', 'data-nav': true, class: 'button secondary'}, 'Clear')));
  return form;
}

function field(name, label, control, kind) {
  return h('div', {class: kind ? `field ${kind}` : 'field'}, h('label', {for: `f-${name}`}, label), control);
}
