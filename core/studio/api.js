// The gateway's API as the studio's pages call it: the key, JSON in and out, NDJSON streams.

const KEY_STORAGE = "museforge.key";

// A key travels in an HTTP header, which holds printable ASCII alone: fetch throws on anything
// else (a "★", a zero-width space pasted with the key), so such a key is refused before any call.
export function keyProblem(key) {
  if (!key) return "Type or paste a key first.";
  const bad = [...key].find((c) => c < "!" || c > "~");
  if (bad === undefined) return "";
  const code = `U+${bad.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  const shown = /\p{L}|\p{N}|\p{P}|\p{S}/u.test(bad) ? `“${bad}” (${code})` : `an invisible character (${code})`;
  return `Not a key: a key is letters, digits and punctuation only, and this one holds ${shown}. `
    + "Copy it again from where it was issued.";
}

const stored = sessionStorage.getItem(KEY_STORAGE) || "";
if (keyProblem(stored)) sessionStorage.removeItem(KEY_STORAGE);  // kept by an older page: never sent
export const session = { key: keyProblem(stored) ? "" : stored };

// Only a well-formed key is kept; the caller says what is wrong with another (keyProblem).
export function setKey(key) {
  if (keyProblem(key)) return false;
  session.key = key;
  sessionStorage.setItem(KEY_STORAGE, key);
  return true;
}

// Whoever shows the key dialog: told when the server refuses the key, whichever call it was.
let keyRefused = () => {};
export function whenKeyRefused(callback) {
  keyRefused = callback;
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.violations = (error.details || [])
      .flatMap((d) => d.fieldViolations || [])
      .map((v) => ({ field: v.field, description: v.description }));
  }
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  if (session.key) h.Authorization = `Bearer ${session.key}`;
  return h;
}

export async function call(method, path, body, signal) {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) {
    let error = { message: `HTTP ${response.status}` };
    try { error = (await response.json()).error || error; } catch { /* not JSON */ }
    const refused = new ApiError(response.status, error);
    if (response.status === 401) keyRefused(refused);
    throw refused;
  }
  return response;
}

export async function* lines(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (text) yield JSON.parse(text);
    }
  }
  if (buffered.trim()) yield JSON.parse(buffered);
}
