// The live tail: events as they are stored, newest first. It reads the
// service's event stream, GET /events/stream (Server-Sent Events, read
// with fetch() because EventSource cannot send an Authorization header;
// each event's id is a cursor, sent back as Last-Event-ID on reconnect).
// Where the service has no stream (it answers 404, or anything that is
// not an event stream) it polls GET /events for events newer than the
// newest it has seen.
import * as api from './api.js';
import {micros} from './format.js';

export const pollInterval = 1000; // ms between polls
const pollLimit = 200;            // events per poll
const lateWindow = 60e6;          // µs: how late an event may be stored after a newer one and still be shown
const maxBackoff = 30000;         // ms

// startTail follows the events that match params (the filters of GET
// /events) and calls onEvents with those not in seen (a Set of ids,
// kept up to date) that keep accepts, onState with a word on how it
// follows ("streaming", "polling", "retrying"), and onGap when more
// events came than one poll returns. newest is the receive time of the
// newest event already shown, or ''. stop() ends it.
export function startTail({params, seen, newest, keep = () => true, onEvents, onState, onGap, onError}) {
  const controller = new AbortController();
  const signal = controller.signal;
  const filters = new URLSearchParams(params);
  filters.delete('limit');
  filters.delete('cursor');
  const state = {newest: newest ?? '', lastEventId: ''};
  const isNew = e => e && e.id && !seen.has(e.id) && keep(e);

  const take = events => {
    const fresh = events.filter(isNew);
    for (const e of fresh) {
      seen.add(e.id);
      if (!state.newest || micros(e.timestamp) > micros(state.newest)) state.newest = e.timestamp;
    }
    if (fresh.length) onEvents(fresh);
  };

  (async () => {
    let backoff = 1000;
    for (;;) {
      try {
        const streamed = await stream(filters, state, take, onState, signal);
        if (!streamed) break; // no stream here: poll
        backoff = 1000;       // the stream ended: reconnect, after a pause as EventSource does
        await sleep(backoff, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err.status === 401 || err.status === 403) return onError(err);
        onState('retrying', err.message);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
      if (signal.aborted) return;
    }
    await poll(filters, state, take, isNew, onState, onGap, onError, signal);
  })().catch(err => {
    if (!signal.aborted) onError(err);
  });
  return {stop: () => controller.abort()};
}

// stream reads the event stream until it ends; false when the service
// has none.
async function stream(filters, state, take, onState, signal) {
  const headers = {Accept: 'text/event-stream'};
  if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
  const res = await api.send('GET', `/events/stream?${filters}`, {signal, headers});
  const type = res.headers.get('Content-Type') ?? '';
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    if (res.status === 401) dispatchEvent(new Event('chronicle:unauthorized'));
    throw new api.ApiError(res.status, 'this API key may not read events');
  }
  if (res.status >= 500) { // down for now: try the stream again
    await res.body?.cancel();
    throw new api.ApiError(res.status, `the event stream answered ${res.status}`);
  }
  if (!res.ok || !type.startsWith('text/event-stream')) {
    // 404, or another route's answer (GET /events/{id} refuses the
    // filters with 400): this service has no stream.
    await res.body?.cancel();
    return false;
  }
  onState('streaming');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let data = [];
  let id = null;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return true;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') { // end of one message
        if (id !== null) state.lastEventId = id;
        if (data.length) {
          try {
            take([JSON.parse(data.join('\n'))]);
          } catch {
            // not an event (a comment or a message of another kind)
          }
        }
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(val);
      else if (field === 'id' && !val.includes('\0')) id = val;
    }
  }
}

// poll asks GET /events, once per pollInterval, for the newest events,
// reaching back lateWindow before the newest seen: consumers store
// concurrently, so an event may be stored after a newer one.
async function poll(filters, state, take, isNew, onState, onGap, onError, signal) {
  let backoff = pollInterval;
  while (!signal.aborted) {
    const q = new URLSearchParams(filters);
    q.set('limit', String(pollLimit));
    if (state.newest) {
      const from = micros(state.newest) - lateWindow;
      if (!q.get('since') || micros(q.get('since')) < from) {
        q.set('since', new Date(Math.floor(from / 1000)).toISOString());
      }
    }
    try {
      const {data} = await api.request('GET', `/events?${q}`, {signal});
      // A full page whose oldest event is new may not hold every new one.
      const gap = data.length === pollLimit && isNew(data.at(-1));
      take(data);
      if (gap) onGap();
      onState('polling');
      backoff = pollInterval;
    } catch (err) {
      if (signal.aborted) return;
      if (err.status === 401 || err.status === 403 || err.status === 400) return onError(err);
      onState('retrying', err.message);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
    await sleep(backoff, signal);
  }
}

function sleep(ms, signal) {
  return new Promise(resolve => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, {once: true});
  });
}
