// Generate images with museforge from C#. The client classes come from protos/ (csharp_namespace
// Museforge.V1); the service class is also called Museforge, hence the alias.
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Museforge.V1;
using MuseforgeClient = Museforge.V1.Museforge.MuseforgeClient;

var address = args.Length > 0 ? args[0] : "http://127.0.0.1:50051";
// Replies over gRPC's default 4 MiB (a WAV of 16 bars, a batch of EXRs) need a larger limit:
// the server's own, 512 MiB.
using var channel = GrpcChannel.ForAddress(address,
    new GrpcChannelOptions { MaxReceiveMessageSize = 512 * 1024 * 1024 });
var client = new MuseforgeClient(channel);

var request = new GenerateRequest
{
    Generator = "image.digits",
    Seed = 42,
    Count = 4,
    Parameters = new Struct { Fields = { ["digit"] = Value.ForNumber(7) } },
};
var headers = new Metadata();  // with API keys on: headers.Add("authorization", $"Bearer {key}");
try
{
    var reply = await client.GenerateAsync(request, headers, deadline: DateTime.UtcNow.AddSeconds(60));
    foreach (var artifact in reply.Artifacts)
    {
        File.WriteAllBytes(artifact.Filename, artifact.Data.ToByteArray());
        Console.WriteLine(artifact.Filename);
    }
}
catch (RpcException error)
{
    // error.Status.Detail says what was refused and names the fields at fault ("invalid request
    // for image.digits (parameters.digit)"); why each was refused comes in the
    // grpc-status-details-bin trailer, a google.rpc.Status holding a google.rpc.BadRequest (the
    // Grpc.StatusProto package's error.GetRpcStatus() decodes it).
    Console.Error.WriteLine($"museforge: {error.StatusCode}: {error.Status.Detail}");
    return 1;
}
return 0;
