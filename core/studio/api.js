// The gateway's API as the studio's pages call it: the key, JSON in and out, NDJSON streams.

const KEY_STORAGE = "museforge.key";
export const session = { key: sessionStorage.getItem(KEY_STORAGE) || "" };

export function setKey(key) {
  session.key = key;
  sessionStorage.setItem(KEY_STORAGE, key);
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
    throw new ApiError(response.status, error);
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
