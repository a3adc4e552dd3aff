// A museforge client over the HTTP/JSON gateway with nothing but Node's built-in fetch,
// as a web tool or an engine without HTTP/2 gRPC would call it.
// Usage: node http_client.mjs http://HOST:PORT  -> prints one JSON object with what it saw.
const [base] = process.argv.slice(2);

async function call(method, path, body) {
  const reply = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: reply.status, body: await reply.json() };
}

const listing = await call("GET", "/v1/generators?modality=image");
const generated = await call("POST", "/v1/generators/image.digits:generate", {
  parameters: { digit: 7 },
  seed: 42,
  count: 2,
  format: "png",
});
const refused = await call("POST", "/v1/generators/image.digits:generate", { parameters: { digit: 12 } });
console.log(JSON.stringify({
  generators: listing.body.generators.map((g) => g.name),
  status: generated.status,
  seed: generated.body.seed,
  artifacts: generated.body.artifacts.map((a) => ({ filename: a.filename, data: a.data })),
  refused: { status: refused.status, error: refused.body.error },
}));
