// The service's status as /health reports it, and what this session's
// API key may do.
import * as api from './api.js';
import {add, fields, h, replace} from './dom.js';

export function statusView(root, params, ctx) {
  const health = h('section', {'aria-labelledby': 'health-h'}, h('h2', {id: 'health-h'}, 'Service'));
  const refresh = h('button', {type: 'button', class: 'secondary', on: {click: () => load()}}, 'Refresh');
  const w = ctx.whoami;
  add(root, h('h1', {}, 'Status'), h('div', {class: 'toolbar'}, h('span'), refresh), health,
    h('section', {'aria-labelledby': 'session-h'}, h('h2', {id: 'session-h'}, 'This session'),
      fields([
        ['API key', w.key ? h('code', {}, w.key) : 'none: access control is off'],
        ['May', w.scopes.join(', ') || 'nothing'],
      ])),
    h('p', {class: 'hint'}, 'Prometheus metrics: ', h('a', {href: '/metrics'}, '/metrics'), '.'));

  async function load() {
    let data;
    try {
      ({data} = await api.request('GET', '/health', {signal: ctx.signal}));
    } catch (err) {
      if (api.isAbort(err)) return;
      data = err.data ?? {status: 'unreachable', error: err.message};
    }
    const ok = data.status === 'healthy';
    replace(health, h('h2', {id: 'health-h'}, 'Service'), fields([
      ['Status', h('span', {class: `badge ${ok ? 'ok' : 'bad'}`, id: 'health-status'}, data.status)],
      ['Problem', data.error ?? ''],
      ['Transport', data.transport ?? ''],
      ['Store', data.store ?? ''],
      ['Entities', data.entities ?? ''],
      ['Access control', data.auth ?? ''],
      ['Version', data.version ?? ''],
    ], 'GET /health'));
  }
  load();
  return null;
}
