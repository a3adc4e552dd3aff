// Generate images with museforge from C++: the client is generated from protos/ by
// protoc and grpc_cpp_plugin (see CMakeLists.txt). Usage: generate HOST:PORT DIGIT SEED COUNT
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "museforge/v1/museforge.grpc.pb.h"

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:50051";
  // Replies over gRPC's default 4 MiB (a WAV of 16 bars, a batch of EXRs) need a larger limit:
  // the server's own, 512 MiB.
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(512 * 1024 * 1024);
  auto stub = museforge::v1::Museforge::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments));

  museforge::v1::GenerateRequest request;
  request.set_generator("image.digits");
  (*request.mutable_parameters()->mutable_fields())["digit"].set_number_value(argc > 2 ? std::atoi(argv[2]) : 7);
  request.set_seed(argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 42);
  request.set_count(argc > 4 ? std::atoi(argv[4]) : 4);

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  // With API keys on: context.AddMetadata("authorization", "Bearer " + key);
  museforge::v1::GenerateResponse reply;
  const grpc::Status status = stub->Generate(&context, request, &reply);
  if (!status.ok()) {
    // The message names the fields at fault; why each was refused is in status.error_details(), a
    // serialized google.rpc.Status holding a google.rpc.BadRequest (googleapis' google/rpc protos).
    std::cerr << "museforge: " << status.error_code() << " " << status.error_message() << "\n";
    return 1;
  }
  for (const auto& artifact : reply.artifacts()) {
    std::ofstream(artifact.filename(), std::ios::binary) << artifact.data();
    std::cout << artifact.filename() << "\n";
  }
  return 0;
}
