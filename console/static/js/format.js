// Times: shown in the viewer's time zone, with the exact UTC time the API
// gave (microseconds) on hover and in the datetime attribute.

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const long = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3,
  timeZoneName: 'short',
});
const short = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  fractionalSecondDigits: 3,
});

// zoneName is the viewer's time zone, e.g. "Europe/Paris".
export const zoneName = zone;

// timeEl is a <time> for an RFC 3339 time: local text, UTC on hover.
export function timeEl(iso, {compact = false} = {}) {
  const t = document.createElement('time');
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) {
    t.textContent = iso ?? '';
    return t;
  }
  t.dateTime = iso;
  t.title = utcText(iso);
  t.textContent = (compact ? short : long).format(d);
  return t;
}

// utcText writes an API time for people: "2026-12-04 06:04:35.030069 UTC".
export function utcText(iso) {
  return iso.replace('T', ' ').replace(/Z$/, ' UTC');
}

// micros is an RFC 3339 time in microseconds since the epoch (Date keeps
// only milliseconds; the API gives microseconds).
export function micros(iso) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(iso ?? '');
  if (!m) return NaN;
  return Date.parse(m[1] + m[3]) * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
}

// since writes a duration in microseconds as "+1.195ms", "+2.5s", "+3m4s".
export function since(us) {
  if (!Number.isFinite(us)) return '';
  if (us < 1000) return `+${us}µs`;
  if (us < 1e6) return `+${+(us / 1000).toFixed(3)}ms`;
  if (us < 60e6) return `+${+(us / 1e6).toFixed(3)}s`;
  const s = Math.round(us / 1e6);
  return s < 3600 ? `+${Math.floor(s / 60)}m${s % 60}s` : `+${Math.floor(s / 3600)}h${Math.floor(s / 60) % 60}m`;
}

// toLocalInput is an API time as a datetime-local value in the viewer's zone.
export function toLocalInput(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const p = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// fromLocalInput is a datetime-local value (the viewer's zone) as an API time.
export function fromLocalInput(value) {
  const d = new Date(value);
  return !value || Number.isNaN(d.getTime()) ? '' : d.toISOString();
}
