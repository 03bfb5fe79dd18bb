"""Server reflection (grpc.reflection.v1 and v1alpha), so grpcurl and other
tools can list the services and fetch their descriptors."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool

from rating.v1 import (
    reflection_v1_pb2,
    reflection_v1_pb2_grpc,
    reflection_v1alpha_pb2,
    reflection_v1alpha_pb2_grpc,
)


def _servicer_class(pb2, pb2_grpc):
    class ReflectionServicer(pb2_grpc.ServerReflectionServicer):
        def __init__(self, service_names: list[str], pool=None):
            self.service_names = sorted(service_names)
            self.pool = pool or descriptor_pool.Default()

        async def ServerReflectionInfo(self, request_iterator, context):
            async for request in request_iterator:
                yield self._answer(request)

        def _answer(self, request):
            which = request.WhichOneof("message_request")
            response = pb2.ServerReflectionResponse(valid_host=request.host, original_request=request)
            try:
                if which == "list_services":
                    response.list_services_response.service.extend(
                        pb2.ServiceResponse(name=name) for name in self.service_names)
                elif which == "file_by_filename":
                    self._files(response, self.pool.FindFileByName(request.file_by_filename))
                elif which == "file_containing_symbol":
                    self._files(response, self.pool.FindFileContainingSymbol(request.file_containing_symbol))
                elif which == "all_extension_numbers_of_type":
                    message = self.pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                    response.all_extension_numbers_response.base_type_name = message.full_name
                    response.all_extension_numbers_response.extension_number.extend(
                        sorted(e.number for e in self.pool.FindAllExtensions(message)))
                else:  # file_containing_extension: this API defines no extensions
                    raise KeyError(which)
            except KeyError as exc:
                response.ClearField("message_response")
                response.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
                response.error_response.error_message = f"not found: {exc}"
            return response

        def _files(self, response, file) -> None:
            """The file and every file it imports, each once."""
            seen, order, todo = set(), [], [file]
            while todo:
                current = todo.pop()
                if current.name in seen:
                    continue
                seen.add(current.name)
                order.append(current)
                todo += list(current.dependencies)
            response.file_descriptor_response.file_descriptor_proto.extend(f.serialized_pb for f in order)

    return ReflectionServicer


ReflectionV1 = _servicer_class(reflection_v1_pb2, reflection_v1_pb2_grpc)
ReflectionV1Alpha = _servicer_class(reflection_v1alpha_pb2, reflection_v1alpha_pb2_grpc)
SERVICE_NAMES = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def add_reflection(server: grpc.aio.Server, service_names: list[str]) -> None:
    names = [*service_names, *SERVICE_NAMES]
    reflection_v1_pb2_grpc.add_ServerReflectionServicer_to_server(ReflectionV1(names), server)
    reflection_v1alpha_pb2_grpc.add_ServerReflectionServicer_to_server(ReflectionV1Alpha(names), server)
