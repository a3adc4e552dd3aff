"""The Open Inference Protocol's messages (Triton's ``inference`` package), generated from protos/.

Triton's own clients (``tritonclient.grpc``) register the same message names in protobuf's
default descriptor pool, and one pool refuses a name twice. These register in a pool of their
own, so museforge and tritonclient load in one process; ``server.reflection_pools`` shows
both pools to gRPC reflection.
"""

from google.protobuf import descriptor_pool as _descriptor_pool

POOL = _descriptor_pool.DescriptorPool()
