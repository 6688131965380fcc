// The live tail: events as they are stored. It reads the service's
// event stream, GET /events/stream (Server-Sent Events, read with
// fetch() because EventSource cannot send an Authorization header).
// Each message's id is the event's seq in the log: the tail starts after
// the newest seq already shown and, when the stream ends (the service
// restarts, the network drops), reconnects with the last id as
// Last-Event-ID, so it misses nothing and shows nothing twice.
import * as api from './api.js';

const maxBackoff = 30000; // ms

// startTail follows the events that match params (the filters of GET
// /events) after the seq after (a number, or null: from now), and calls
// onEvents with those not in seen (a Set of ids, kept up to date) that
// keep accepts, and onState with a word on how it follows ("streaming",
// "retrying"). stop() ends it.
export function startTail({params, seen, after = null, keep = () => true, onEvents, onState, onError}) {
  const controller = new AbortController();
  const signal = controller.signal;
  const filters = new URLSearchParams(params);
  filters.delete('limit');
  filters.delete('cursor');
  const state = {lastEventId: after === null ? '' : String(after)};
  const isNew = e => e && e.id && !seen.has(e.id) && keep(e);

  const take = events => {
    const fresh = events.filter(isNew);
    for (const e of fresh) seen.add(e.id);
    if (fresh.length) onEvents(fresh);
  };

  (async () => {
    let backoff = 1000;
    while (!signal.aborted) {
      try {
        await stream(filters, state, take, onState, signal);
        backoff = 1000; // the stream ended: reconnect, after a pause as EventSource does
        onState('retrying', 'the stream ended');
        await sleep(backoff, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err.status >= 400 && err.status < 500 && err.status !== 429) return onError(err);
        onState('retrying', err.message);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  })().catch(err => {
    if (!signal.aborted) onError(err);
  });
  return {stop: () => controller.abort()};
}

// stream reads the event stream until it ends.
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
    await res.body?.cancel();
    throw new api.ApiError(res.status, `the event stream answered ${res.status} ${type}`);
  }
  onState('streaming');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let data = [];
  let id = null;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
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

function sleep(ms, signal) {
  return new Promise(resolve => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, {once: true});
  });
}
