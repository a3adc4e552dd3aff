"""The gRPC server: the services (museforge.v1 and the Open Inference Protocol), the interceptors
(keys, limits, metrics, tracing), TLS and the worker processes.
"""
