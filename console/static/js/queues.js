// Queues and the Invalid Message Channel: route queues with their depths
// and consumers, dead-letter queues (and the unrouted queue), their
// messages with the reasons they died, and, with the admin scope (which
// every one of these calls needs), replay and purge. Purging asks first.
import * as api from './api.js';
import {add, fields, h, replace, table} from './dom.js';
import {timeEl} from './format.js';

const peekLimit = 100;

export function queuesView(root, params, ctx) {
  add(root, h('h1', {}, 'Queues'));
  if (!ctx.can('admin')) {
    add(root, h('p', {class: 'notice', id: 'no-admin'},
      `Queues and dead letters need an API key with the admin scope; this key may: ${ctx.whoami.scopes.join(', ') || 'nothing'}.`));
    return null;
  }
  const selected = params.get('dlq') ?? '';
  const routes = h('section', {'aria-labelledby': 'routes-h'}, h('h2', {id: 'routes-h'}, 'Route queues'));
  const dlqs = h('section', {'aria-labelledby': 'dlqs-h'}, h('h2', {id: 'dlqs-h'}, 'Dead letters'));
  const letters = h('section', {'aria-labelledby': 'letters-h', id: 'letters'});
  const refresh = h('button', {type: 'button', class: 'secondary', on: {click: () => load()}}, 'Refresh');
  add(root, h('div', {class: 'toolbar'}, h('p', {class: 'summary', id: 'queues-summary', 'aria-live': 'polite'}), refresh),
    routes, dlqs, selected ? letters : null);

  const act = async (what, queue, body, done) => {
    try {
      const {data} = await api.request(what === 'replay' ? 'POST' : 'DELETE',
        what === 'replay' ? `/dlq/${encodeURIComponent(queue)}/replay` : `/dlq/${encodeURIComponent(queue)}`, {body});
      const n = what === 'replay' ? data.replayed : data.purged;
      ctx.toast(`${done} ${n} ${n === 1 ? 'message' : 'messages'} ${what === 'replay' ? 'from' : 'of'} ${queue}.`);
    } catch (err) {
      ctx.toast(`${queue}: ${err.message}`, {error: true});
    }
    await load();
  };
  const replay = (queue, ids) => act('replay', queue, ids ? {ids} : {}, 'Replayed');
  const purge = async (queue, ids) => {
    const what = ids ? `dead letter ${ids[0]}` : `every message in ${queue}`;
    if (await confirmDialog('Purge dead letters?', `Delete ${what}? They cannot be replayed afterwards.`, 'Purge')) {
      await act('purge', queue, ids ? {ids} : {all: true}, 'Purged');
    }
  };

  async function load() {
    const summary = root.querySelector('#queues-summary');
    summary.textContent = 'Loading…';
    try {
      const [qs, dl] = await Promise.all([
        api.request('GET', '/queues', {signal: ctx.signal}).then(r => r.data),
        api.request('GET', '/dlq', {signal: ctx.signal}).then(r => r.data),
      ]);
      const consumers = new Map(qs.map(q => [q.queue, q.consumers]));
      replace(routes, h('h2', {id: 'routes-h'}, 'Route queues'), table({
        caption: 'Each route’s queue: messages waiting and the consumers taking them',
        columns: ['Queue', 'Route', 'Depth', 'Consumers'],
        rows: qs.filter(q => q.kind === 'route').map(q => ({attrs: {dataset: {queue: q.queue}},
          cells: [h('code', {}, q.queue), q.route ?? '', h('span', {class: 'num depth'}, q.depth), h('span', {class: 'num'}, q.consumers)]})),
        attrs: {class: 'queues', id: 'route-queues'},
      }));
      replace(dlqs, h('h2', {id: 'dlqs-h'}, 'Dead letters'), table({
        caption: 'Dead-letter queues, and the unrouted queue for events no route matched',
        columns: ['Queue', 'Route', 'Depth', 'Consumers', 'Actions'],
        rows: dl.map(q => ({attrs: {dataset: {queue: q.queue}, class: q.queue === selected ? 'selected' : null},
          cells: [
            h('a', {href: `/?${new URLSearchParams({view: 'queues', dlq: q.queue})}`, 'data-nav': true, title: `See the messages in ${q.queue}`}, q.queue),
            q.route || (q.queue.endsWith('unrouted') ? 'no route matched' : ''),
            h('span', {class: 'num depth'}, q.depth),
            h('span', {class: 'num'}, consumers.get(q.queue) ?? 0),
            h('span', {class: 'actions'},
              h('button', {type: 'button', class: 'replay', disabled: q.depth === 0, on: {click: () => replay(q.queue)}}, 'Replay all'),
              h('button', {type: 'button', class: 'purge danger', disabled: q.depth === 0, on: {click: () => purge(q.queue)}}, 'Purge all')),
          ]})),
        attrs: {class: 'queues', id: 'dead-letter-queues'},
      }));
      const waiting = qs.filter(q => q.kind === 'route').reduce((n, q) => n + q.depth, 0);
      const dead = dl.reduce((n, q) => n + q.depth, 0);
      summary.textContent = `${waiting} ${waiting === 1 ? 'message' : 'messages'} waiting in route queues, ${dead} dead ${dead === 1 ? 'letter' : 'letters'}.`;
      if (selected) await peek();
    } catch (err) {
      if (!api.isAbort(err)) summary.textContent = err.message;
    }
  }

  async function peek() {
    const {data} = await api.request('GET', `/dlq/${encodeURIComponent(selected)}?limit=${peekLimit}`, {signal: ctx.signal});
    replace(letters, h('h2', {id: 'letters-h'}, `Messages in ${selected}`),
      data.length ? h('p', {}, data.length === peekLimit ? `The first ${peekLimit}, oldest first; nothing is removed by looking.` : 'Oldest first; nothing is removed by looking.')
        : h('p', {class: 'empty'}, 'No message here.'),
      h('ol', {class: 'letters'}, data.map(d => h('li', {class: 'letter', dataset: {id: d.id}},
        h('h3', {}, h('code', {}, d.id)),
        fields([
          ['Reason', h('span', {class: 'reason'}, d.reason)],
          ['Died in', d.queue],
          ['Exchange', d.exchange],
          ['Routing key', d.routing_key],
          ['Deaths', String(d.count)],
          ['First death', d.first_death_at ? timeEl(d.first_death_at) : ''],
        ]),
        h('details', {}, h('summary', {}, 'Payload'), h('pre', {class: 'payload'}, pretty(d.payload))),
        h('div', {class: 'actions'},
          h('button', {type: 'button', class: 'replay', on: {click: () => replay(selected, [d.id])}}, 'Replay'),
          h('button', {type: 'button', class: 'purge danger', on: {click: () => purge(selected, [d.id])}}, 'Purge'))))));
  }

  load();
  return null;
}

// pretty indents a JSON payload; anything else is shown as it is.
function pretty(payload) {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}

// confirmDialog asks a yes-or-no question in a modal dialog; Escape and
// Cancel say no. It resolves to true only for the confirming button.
export function confirmDialog(title, text, yes) {
  return new Promise(resolve => {
    const dialog = h('dialog', {class: 'confirm', 'aria-labelledby': 'confirm-h', 'aria-describedby': 'confirm-text'},
      h('form', {method: 'dialog'},
        h('h2', {id: 'confirm-h'}, title),
        h('p', {id: 'confirm-text'}, text),
        h('div', {class: 'actions'},
          h('button', {value: 'cancel', class: 'secondary', autofocus: true}, 'Cancel'),
          h('button', {value: 'confirm', class: 'danger'}, yes))));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
