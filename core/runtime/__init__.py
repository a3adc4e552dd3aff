"""The runtime: ONNX Runtime sessions, the dynamic batcher, the memory arena, execution providers,
per-model statistics and model manifests. Imports neither grpc nor the server, gateway or jobs.
"""
