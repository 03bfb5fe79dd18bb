"""gRPC API `rating.v1`: modules generated from proto/rating/v1/*.proto.

`rating_pb2` (messages), `rating_pb2_grpc` (stubs and servicers),
`health_pb2*` and `reflection_*_pb2*` (standard gRPC health and reflection).
They are build outputs: in a source checkout they are (re)generated here on
first import when missing or older than their .proto (rating._protogen).
"""

from rating._protogen import ensure as _ensure

_ensure()
