// The console's entry: it learns whether the service wants a key and what
// the key may do, then shows the view the URL names. Every view's state
// is in the query string, so any page can be shared by its URL:
//   /?actor=…&event_type=…   events (the filters of GET /events)
//   /?event=ID               one event
//   /?view=queues[&dlq=Q]    queues and dead letters
//   /?view=status            the service's status
import * as api from './api.js';
import {h, replace} from './dom.js';
import {eventsView} from './events.js';
import {detailView} from './detail.js';
import {queuesView} from './queues.js';
import {statusView} from './status.js';

const main = document.getElementById('main');
const who = document.getElementById('who');
const toastEl = document.getElementById('toast');

const views = {events: eventsView, event: detailView, queues: queuesView, status: statusView};

// ctx is what every view is given.
const ctx = {
  health: null,
  whoami: null,
  can: scope => ctx.whoami?.scopes.includes(scope) ?? false,
  navigate,
  toast,
  signal: null,
};

let leave = null; // ends the current view: its requests, its timers

async function start() {
  addEventListener('popstate', () => render());
  document.addEventListener('click', onLinkClick);
  addEventListener('chronicle:unauthorized', () => {
    // Only a key that was accepted before can stop working; a new one is
    // judged by identify.
    if (ctx.whoami) signIn('The service no longer accepts this API key. Give a valid one.');
  });
  try {
    ctx.health = (await api.request('GET', '/health')).data;
  } catch (err) {
    ctx.health = err.data; // unhealthy, but it says whether keys are needed
    if (!ctx.health) return fail(`Chronicle does not answer: ${err.message}`);
  }
  if (ctx.health.auth === 'on' && !api.session.key) return signIn();
  await identify();
}

// identify asks which scopes the key has, then shows the page.
async function identify() {
  try {
    ctx.whoami = (await api.request('GET', '/whoami')).data;
  } catch (err) {
    if (err.status === 401) return signIn('That API key is not known to this service.');
    return fail(`Cannot tell what this API key may do: ${err.message}`);
  }
  showWho();
  render();
}

function signIn(message) {
  api.session.key = '';
  ctx.whoami = null;
  leave?.();
  leave = null;
  showWho();
  const input = h('input', {id: 'api-key', name: 'key', type: 'password', autocomplete: 'off', required: true,
    spellcheck: 'false', 'aria-describedby': message ? 'signin-error' : null});
  const form = h('form', {class: 'signin', on: {submit: e => {
    e.preventDefault();
    api.session.key = input.value.trim();
    identify();
  }}},
  h('h1', {}, 'Sign in'),
  h('p', {}, 'This Chronicle asks for an API key. The console keeps it in this tab only and sends it with each request.'),
  h('label', {for: 'api-key'}, 'API key'),
  input,
  message ? h('p', {id: 'signin-error', class: 'error', role: 'alert'}, message) : null,
  h('button', {type: 'submit'}, 'Sign in'));
  replace(main, form);
  input.focus();
}

function fail(message) {
  replace(main, h('h1', {}, 'Chronicle'), h('p', {class: 'error', role: 'alert'}, message));
}

// showWho says who the console acts as, and hides what the key may not use.
function showWho() {
  const w = ctx.whoami;
  const items = [];
  if (w && ctx.health?.auth === 'on') {
    items.push(h('span', {class: 'key', title: 'The API key in use (its label, never the key)'}, w.key),
      h('span', {class: 'scopes'}, w.scopes.join(' · ')),
      h('button', {type: 'button', class: 'link', on: {click: () => signIn()}}, 'Sign out'));
  } else if (w) {
    items.push(h('span', {class: 'badge warn', title: 'Anyone who can reach the service may do everything'}, 'Access control off'));
  }
  replace(who, items);
  for (const a of document.querySelectorAll('nav a[data-needs]')) {
    a.closest('li').hidden = !ctx.can(a.dataset.needs);
  }
}

function viewOf(params) {
  if (params.has('event')) return 'event';
  return params.get('view') ?? 'events';
}

function render({focus = false} = {}) {
  if (!ctx.whoami) return;
  leave?.();
  const params = new URLSearchParams(location.search);
  const name = viewOf(params);
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    if (a.dataset.view === (name === 'event' ? 'events' : name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const controller = new AbortController();
  ctx.signal = controller.signal;
  main.replaceChildren();
  const view = views[name];
  let stop = null;
  if (view) stop = view(main, params, ctx);
  else main.append(h('h1', {}, 'Not here'), h('p', {}, 'The console has no such view. ', h('a', {href: '/', 'data-nav': true}, 'See the events.')));
  leave = () => {
    controller.abort();
    stop?.();
  };
  if (focus) main.focus({preventScroll: true});
}

// navigate shows url (a path with a query) as a new history entry, or in
// place of the current one with replace.
function navigate(url, {replace: inPlace = false, state = null} = {}) {
  if (inPlace) history.replaceState(state, '', url);
  else history.pushState(state, '', url);
  render({focus: !inPlace});
  if (!inPlace) scrollTo(0, 0);
}

// onLinkClick keeps the console's own links in the page, unless the
// user asks for a new tab or window.
function onLinkClick(e) {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
}

let toastTimer;
// toast says, for a few seconds, what an action did.
function toast(message, {error = false} = {}) {
  toastEl.textContent = message;
  toastEl.classList.toggle('error', error);
  toastEl.classList.add('shown');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toastEl.classList.remove('shown'), 6000);
}

start();
