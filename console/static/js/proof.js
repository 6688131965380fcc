// The verifiable log's place in the event detail: the event's seq, and a
// check, in this browser, that the log holds the event as stored. The
// check recomputes the event's leaf from its content (RFC 8785 canonical
// JSON, which for Chronicle's all-string fields is JSON.stringify with
// members sorted by UTF-16 code units: exactly what JavaScript sorts by),
// walks the inclusion proof up to a root (RFC 9162, 2.1.3.2), compares it
// with the signed checkpoint's, and checks the checkpoint's Ed25519
// signature against the key the server names, when the browser can.
// Trust ends at that key: compare it with the one you pinned.
import * as api from './api.js';
import {fields, h, replace} from './dom.js';

export function proofSection(ev) {
  if (ev.seq === undefined || ev.seq === null) return null;
  const result = h('div', {class: 'proof-result', 'aria-live': 'polite'});
  const button = h('button', {type: 'button', id: 'check-proof'}, 'Check inclusion proof');
  button.addEventListener('click', async () => {
    button.disabled = true;
    replace(result, h('p', {}, 'Checking…'));
    try {
      replace(result, ...await check(ev));
    } catch (err) {
      replace(result, h('p', {class: 'error', role: 'alert'}, err.message));
    } finally {
      button.disabled = false;
    }
  });
  return h('section', {class: 'proof wide', id: 'proof', 'aria-labelledby': 'proof-h'},
    h('h2', {id: 'proof-h'}, 'Verifiable log'),
    fields([['Sequence number', String(ev.seq)]], 'The event’s place in the log'),
    ev.redacted ? h('p', {}, `Redacted by ${ev.redacted.by}: its content is gone, its leaf stays in the log.`) : '',
    button, result);
}

// Content fields of an event's leaf: the API's JSON without seq,
// redacted and what reading adds.
const leafFields = ['id', 'actor', 'action', 'resource_type', 'resource_id', 'timestamp', 'occurred_at',
  'event_type', 'correlation_id', 'entity_key', 'metadata'];

async function check(ev) {
  const {data: p} = await api.request('GET', `/events/${encodeURIComponent(ev.id)}/proof`);
  const leaf = b64(p.leaf_hash);
  const lines = [];
  if (!ev.redacted) {
    // The stored event itself, not the enriched one shown above.
    const res = await api.send('GET', `/events/export?from_seq=${ev.seq}&to_seq=${ev.seq + 1}`);
    const stored = JSON.parse((await res.text()).split('\n')[0]);
    const mine = await leafHash(stored);
    if (!equal(mine, leaf)) {
      return [h('p', {class: 'error', role: 'alert', id: 'proof-verdict'}, 'FAILED: the event’s content does not match its leaf in the log.')];
    }
    lines.push(['Leaf', `${hex(mine)} (recomputed from the event)`]);
  } else {
    lines.push(['Leaf', `${hex(leaf)} (as logged; the content is redacted)`]);
  }
  const [origin, size, rootB64] = p.checkpoint.split('\n');
  const root = await rootFromInclusion(p.seq, p.tree_size, leaf, p.proof.map(b64));
  if (Number(size) !== p.tree_size || !equal(root, b64(rootB64))) {
    return [h('p', {class: 'error', role: 'alert', id: 'proof-verdict'}, 'FAILED: the inclusion proof does not lead to the checkpoint’s root.')];
  }
  lines.push(['Checkpoint', `${origin}, ${size} events, root ${hex(root)}`]);
  lines.push(['Signature', await signature(p.checkpoint)]);
  return [h('p', {class: 'ok', id: 'proof-verdict'}, `Verified: event ${p.seq} is in the log’s tree of ${p.tree_size} events.`),
    fields(lines, 'What was checked')];
}

async function leafHash(e) {
  const obj = {};
  for (const k of leafFields) {
    if (e[k] === undefined || e[k] === '' || (k === 'metadata' && !Object.keys(e[k]).length)) continue;
    obj[k] = k === 'metadata' ? Object.fromEntries(Object.keys(e[k]).sort().map(m => [m, e[k][m]])) : e[k];
  }
  const sorted = Object.fromEntries(Object.keys(obj).sort().map(k => [k, obj[k]]));
  const bytes = new TextEncoder().encode(JSON.stringify(sorted));
  return sha256(concat(new Uint8Array([0]), bytes));
}

// rootFromInclusion is RFC 9162's inclusion proof verification, with
// arithmetic instead of bit operations (JavaScript's are 32-bit).
async function rootFromInclusion(index, size, leaf, proof) {
  if (index >= size) throw new Error('proof: index beyond the tree');
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error('proof: too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('proof: too short');
  return r;
}

// signature checks the checkpoint's signature by the key /log/key names.
async function signature(note) {
  let key;
  try {
    ({data: key} = {data: (await (await api.send('GET', '/log/key')).text()).trim()});
  } catch {
    return 'not checked: the key could not be fetched';
  }
  const [name, hash, pub64] = splitKey(key);
  const cut = note.indexOf('\n\n');
  const text = note.slice(0, cut + 1);
  const sig = note.slice(cut + 2).split('\n').find(l => l.startsWith(`— ${name} `));
  if (!sig) return `FAILED: no signature by ${name}`;
  const raw = b64(sig.split(' ')[2]);
  const pub = b64(pub64);
  if (hex(raw.slice(0, 4)) !== hash || pub[0] !== 1) return `FAILED: the signature is not by ${key}`;
  try {
    const k = await crypto.subtle.importKey('raw', pub.slice(1), {name: 'Ed25519'}, false, ['verify']);
    const ok = await crypto.subtle.verify('Ed25519', k, raw.slice(4), new TextEncoder().encode(text));
    return ok ? `valid, by ${key} (compare it with the key you trust)` : `FAILED: invalid signature by ${key}`;
  } catch {
    return `not checked: this browser cannot verify Ed25519 (chronicle verify can); key ${key}`;
  }
}

function splitKey(key) {
  const i = key.indexOf('+'), j = key.indexOf('+', i + 1);
  return [key.slice(0, i), key.slice(i + 1, j), key.slice(j + 1)];
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}

function b64(s) {
  return Uint8Array.from(atob(s), c => c.charCodeAt(0));
}

function hex(bytes) {
  return [...bytes].map(b => b.toString(16).padStart(2, '0')).join('');
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
