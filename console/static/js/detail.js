// One event: every field, its metadata as a table, the entity it names,
// the other events of its correlation group, and its Message History as
// a timeline.
import * as api from './api.js';
import {add, fields, h, replace, table} from './dom.js';
import {micros, since, timeEl} from './format.js';
import {eventHref, searchHref} from './events.js';
import {proofSection} from './proof.js';

const hopNames = {
  accepted: 'accepted', published: 'published', consumed: 'consumed',
  dead_lettered: 'dead-lettered', replayed: 'replayed', stored: 'stored',
};

export function detailView(root, params, ctx) {
  const id = params.get('event');
  const status = h('p', {class: 'summary', 'aria-live': 'polite'}, 'Loading…');
  add(root, h('p', {class: 'crumbs'}, h('a', {href: '/', 'data-nav': true}, '‹ Events')), h('h1', {}, 'Event'), status);
  if (!ctx.can('read')) {
    replace(status, h('span', {class: 'error'}, 'This API key may not read events.'));
    return null;
  }
  (async () => {
    let ev;
    try {
      ({data: ev} = await api.request('GET', `/events/${encodeURIComponent(id)}?include=history`, {signal: ctx.signal}));
    } catch (err) {
      if (!api.isAbort(err)) replace(status, h('span', {class: 'error', role: 'alert'}, err.message));
      return;
    }
    document.title = `${ev.actor} ${ev.action} · Chronicle`;
    const entity = h('section', {'aria-labelledby': 'entity-h'}, h('h2', {id: 'entity-h'}, 'Entity'));
    const group = h('section', {'aria-labelledby': 'group-h'}, h('h2', {id: 'group-h'}, 'Correlation group'));
    replace(root,
      h('p', {class: 'crumbs'}, h('a', {href: '/', 'data-nav': true}, '‹ Events')),
      h('h1', {}, h('span', {class: 'actor'}, ev.actor), ' ', h('span', {class: 'verb'}, ev.action), ' ',
        h('span', {class: 'resource'}, `${ev.resource_type}/${ev.resource_id}`)),
      h('div', {class: 'detail'},
        h('section', {'aria-labelledby': 'fields-h'}, h('h2', {id: 'fields-h'}, 'Fields'), eventFields(ev)),
        h('section', {'aria-labelledby': 'metadata-h'}, h('h2', {id: 'metadata-h'}, 'Metadata'), metadataTable(ev)),
        h('section', {'aria-labelledby': 'history-h', class: 'wide'}, h('h2', {id: 'history-h'}, 'Message History'), timeline(ev.history ?? [])),
        entity,
        group,
        proofSection(ev)));
    showEntity(entity, ev, ctx);
    showGroup(group, ev, ctx);
  })();
  return null;
}

function filterLink(name, value) {
  return value ? h('a', {href: searchHref(new URLSearchParams({[name]: value})), 'data-nav': true, title: `Events with this ${name.replace('_', ' ')}`}, value) : '';
}

function eventFields(ev) {
  return fields([
    ['ID', h('code', {}, ev.id)],
    ['Received', timeEl(ev.timestamp)],
    ['Occurred', ev.occurred_at ? timeEl(ev.occurred_at) : ''],
    ['Actor', filterLink('actor', ev.actor)],
    ['Action', filterLink('action', ev.action)],
    ['Resource type', filterLink('resource_type', ev.resource_type)],
    ['Resource id', filterLink('resource_id', ev.resource_id)],
    ['Event type', filterLink('event_type', ev.event_type)],
    ['Correlation id', filterLink('correlation_id', ev.correlation_id)],
    ['Entity key', filterLink('entity_key', ev.entity_key)],
  ], 'Fields of the event');
}

function metadataTable(ev) {
  const keys = Object.keys(ev.metadata ?? {}).sort();
  if (!keys.length) return h('p', {class: 'empty'}, 'No metadata.');
  return table({
    caption: ev.entity_key ? 'Metadata, with the entity’s name and attributes added when read (the event’s own values win)' : 'Metadata',
    columns: ['Key', 'Value'],
    rows: keys.map(k => [h('code', {}, k), h('span', {class: 'value'}, ev.metadata[k])]),
    attrs: {class: 'kv', id: 'metadata'},
  });
}

async function showEntity(section, ev, ctx) {
  if (!ev.entity_key) return add(section, h('p', {class: 'empty'}, 'The event names no entity.'));
  try {
    const {data: ent} = await api.request('GET', `/entities/${encodeURIComponent(ev.entity_key)}`, {signal: ctx.signal});
    const attrs = Object.keys(ent.attributes ?? {}).sort();
    add(section,
      fields([['Key', h('code', {}, ent.key)], ['Name', ent.name]], 'The registered entity'),
      attrs.length ? table({caption: 'Attributes', columns: ['Attribute', 'Value'],
        rows: attrs.map(k => [h('code', {}, k), h('span', {class: 'value'}, ent.attributes[k])]), attrs: {class: 'kv'}}) : null);
  } catch (err) {
    if (api.isAbort(err)) return;
    add(section, h('p', {class: err.status === 404 ? 'empty' : 'error'},
      err.status === 404 ? `No entity is registered under ${ev.entity_key}.` : err.message));
  }
}

async function showGroup(section, ev, ctx) {
  if (!ev.correlation_id) return add(section, h('p', {class: 'empty'}, 'The event has no correlation id.'));
  const q = new URLSearchParams({correlation_id: ev.correlation_id, limit: '50'});
  try {
    const {data, headers} = await api.request('GET', `/events?${q}`, {signal: ctx.signal});
    const others = data.length - (data.some(e => e.id === ev.id) ? 1 : 0);
    add(section,
      h('p', {}, others === 0 ? 'No other event shares its correlation id.' : `Events sharing correlation id ${ev.correlation_id}, newest first:`),
      h('ol', {class: 'group', id: 'group'}, data.map(e => h('li', e.id === ev.id ? {'aria-current': 'true'} : {},
        timeEl(e.timestamp, {compact: true}), ' ',
        e.id === ev.id ? h('strong', {}, `${e.actor} ${e.action} ${e.resource_type}/${e.resource_id} (this event)`)
          : h('a', {href: eventHref(e.id), 'data-nav': true}, `${e.actor} ${e.action} ${e.resource_type}/${e.resource_id}`)))),
      api.nextCursor(headers) ? h('p', {}, h('a', {href: searchHref(new URLSearchParams({correlation_id: ev.correlation_id})), 'data-nav': true}, 'All the events of the group')) : null);
  } catch (err) {
    if (!api.isAbort(err)) add(section, h('p', {class: 'error'}, err.message));
  }
}

// timeline shows the hops in order: when (local, UTC on hover), how long
// after the first, what, and where.
function timeline(hops) {
  if (!hops.length) return h('p', {class: 'empty'}, 'No history recorded.');
  const t0 = micros(hops[0].at);
  return h('ol', {class: 'timeline', id: 'history'}, hops.map(hop => h('li', {class: `hop hop-${hop.hop}`},
    h('span', {class: 'hop-kind'}, hopNames[hop.hop] ?? hop.hop),
    h('span', {class: 'hop-time'}, timeEl(hop.at, {compact: true})),
    h('span', {class: 'delta', title: 'after the first hop'}, since(micros(hop.at) - t0)),
    h('span', {class: 'hop-what'}, describeHop(hop)))));
}

// describeHop says what happened at a hop, in a few words (as the
// command line's timeline does).
function describeHop(hop) {
  const parts = [];
  const say = (cond, text) => { if (cond) parts.push(text); };
  say(hop.process && hop.hop !== 'consumed', `by ${hop.process}`);
  say(hop.request_id, `request ${hop.request_id}`);
  say(hop.api_key, `API key ${hop.api_key}`);
  say(hop.transport, `via ${hop.transport}`);
  say(hop.exchange, `exchange ${hop.exchange}`);
  say(hop.routing_key, `routing key ${hop.routing_key}`);
  say(hop.queues?.length, `to ${hop.queues?.join(', ')}`);
  say(hop.queue, `queue ${hop.queue}`);
  say(hop.hop === 'consumed' && (hop.process || hop.worker), `by ${[hop.process, hop.worker && `worker ${hop.worker}`].filter(Boolean).join(' ')}`);
  say(hop.delivery, `delivery ${hop.delivery}`);
  say(hop.reason, `reason: ${hop.reason}`);
  say(hop.by, `replayed by ${hop.by}`);
  say(hop.store, `in ${hop.store}`);
  say(hop.batch, `batch of ${hop.batch}`);
  return parts.join(', ');
}
