"""gRPC API `rating.v1`: modules generated from proto/rating/v1/*.proto.

`rating_pb2` (messages) and `rating_pb2_grpc` (stubs and servicers); the
standard health and reflection services come from grpcio-health-checking and
grpcio-reflection.
They are build outputs: in a source checkout they are (re)generated here on
first import when missing or older than their .proto (rating._protogen).
"""

from rating._protogen import ensure as _ensure

_ensure()
