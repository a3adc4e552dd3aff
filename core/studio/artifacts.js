// An artifact as the gateway's JSON carries it: base64 bytes and provenance metadata (values that
// are JSON arrive as text).

export function bytesOf(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return bytes;
}

export function base64Of(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export function provenanceOf(artifact) {
  const record = { ...artifact.metadata };
  for (const [key, value] of Object.entries(record)) {
    if (typeof value === "string" && (value.startsWith("[") || value.startsWith("{"))) {
      try { record[key] = JSON.parse(value); } catch { /* plain text */ }
    }
  }
  return record;
}
