// The console's one door to Chronicle's HTTP API. The API key lives in
// sessionStorage (gone when the tab closes) and goes with every request
// as a bearer token; a 401 tells the app to ask for a key again.

const storageKey = 'chronicle.apiKey';

export const session = {
  get key() { return sessionStorage.getItem(storageKey) ?? ''; },
  set key(v) {
    if (v) sessionStorage.setItem(storageKey, v);
    else sessionStorage.removeItem(storageKey);
  },
};

// ApiError is an answer outside 2xx: its status, the API's message and
// its JSON body (an unhealthy /health still says what it is).
export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

// send makes a request with the key and returns the Response as it is.
export function send(method, path, {body, signal, headers} = {}) {
  const h = new Headers(headers);
  if (session.key) h.set('Authorization', `Bearer ${session.key}`);
  if (body !== undefined) h.set('Content-Type', 'application/json');
  return fetch(path, {
    method, headers: h, signal, cache: 'no-store', credentials: 'omit', redirect: 'error',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// request makes a request and decodes its JSON answer: {data, headers,
// status}; an answer outside 2xx is thrown as an ApiError.
export async function request(method, path, options) {
  const res = await send(method, path, options);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: the status says enough
  }
  if (!res.ok) {
    if (res.status === 401) dispatchEvent(new Event('chronicle:unauthorized'));
    const msg = data?.reason ? `${data.error}: ${data.reason}` : (data?.error ?? `${res.status} ${res.statusText}`);
    throw new ApiError(res.status, msg, data);
  }
  return {data, headers: res.headers, status: res.status};
}

// nextCursor is the cursor of the next page that a Link header names, or ''.
export function nextCursor(headers) {
  const m = /<([^>]*)>;\s*rel="next"/.exec(headers.get('Link') ?? '');
  return m ? (new URL(m[1], location.origin).searchParams.get('cursor') ?? '') : '';
}

// isAbort tells a request abandoned on purpose (the view was left).
export function isAbort(err) {
  return err?.name === 'AbortError';
}
