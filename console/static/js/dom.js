// Building the page from data without ever reading data as markup: text
// goes in as text nodes, attributes are set one by one, and handlers are
// functions, never "on…" attributes. Nothing here uses innerHTML.

// h creates an element: h('a', {href: '/', class: 'x', on: {click: fn}}, 'text', child…).
// An attribute whose value is null, undefined or false is left out; true
// sets it empty. Children may be nodes, strings, numbers or arrays of them.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'on') {
      for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (/^on/i.test(name)) {
      throw new Error(`h: set handlers with "on", not the ${name} attribute`);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  add(el, children);
  return el;
}

// add appends children to el, strings as text.
export function add(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replace puts children in place of everything el holds.
export function replace(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

// table builds a table from column headings and rows of cells; each row
// is an array of cells, or {cells, attrs} for a row with attributes.
// Every cell carries its heading as data-label, for the narrow layout
// where each row is shown as a card.
export function table({caption, columns, rows, attrs}) {
  return h('table', attrs ?? {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, columns.map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows.map(r => tableRow(columns, r))));
}

export function tableRow(columns, r) {
  const cells = Array.isArray(r) ? r : r.cells;
  return h('tr', Array.isArray(r) ? {} : r.attrs,
    cells.map((c, i) => h('td', {'data-label': columns[i]}, c)));
}

// fields is a two-column table of names and values, leaving out the
// values that are empty.
export function fields(pairs, caption) {
  return h('table', {class: 'fields'},
    caption ? h('caption', {}, caption) : null,
    h('tbody', {}, pairs.filter(([, v]) => v !== '' && v !== null && v !== undefined)
      .map(([k, v]) => h('tr', {}, h('th', {scope: 'row'}, k), h('td', {}, v)))));
}
