// The verifiable log's place in the event detail, kept apart on purpose.
// A later version of Chronicle numbers each stored event (seq) and proves
// its inclusion in the log (GET /events/{id}/proof): that section is
// built here and nowhere else. For now it shows seq when the event has
// one, and nothing otherwise.
import {fields, h} from './dom.js';

export function proofSection(ev) {
  if (ev.seq === undefined || ev.seq === null) return null;
  return h('section', {class: 'proof', id: 'proof', 'aria-labelledby': 'proof-h'},
    h('h2', {id: 'proof-h'}, 'Verifiable log'),
    fields([['Sequence number', String(ev.seq)]], 'The event’s place in the log'));
}
