// A museforge.v1 client in Node.js, from the same .proto files as every other client.
// Usage: node client.mjs HOST:PORT PROTOS_DIR  -> prints one JSON object with what it saw.
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import path from "node:path";

const [address, protos] = process.argv.slice(2);
const definition = protoLoader.loadSync(path.join(protos, "museforge/v1/museforge.proto"), {
  includeDirs: [protos],
  keepCase: false,
  longs: String,
  defaults: true,
});
const { museforge } = grpc.loadPackageDefinition(definition);
const client = new museforge.v1.Museforge(address, grpc.credentials.createInsecure());

function call(method, request) {
  return new Promise((resolve, reject) =>
    client[method](request, { deadline: Date.now() + 60_000 }, (error, reply) => (error ? reject(error) : resolve(reply))),
  );
}

try {
  const listing = await call("ListGenerators", {});
  const reply = await call("Generate", {
    generator: "image.digits",
    parameters: { fields: { digit: { numberValue: 7 } } },
    seed: "42",
    count: 2,
    format: "png",
  });
  let refused = null;
  try {
    await call("Generate", { generator: "image.digits", parameters: { fields: { digit: { numberValue: 12 } } } });
  } catch (error) {
    refused = { code: error.code, details: error.details };
  }
  console.log(JSON.stringify({
    generators: listing.generators.map((g) => g.name),
    seed: reply.seed,
    artifacts: reply.artifacts.map((a) => ({ filename: a.filename, mediaType: a.mediaType, data: a.data.toString("base64") })),
    refused,
  }));
} finally {
  client.close();
}
