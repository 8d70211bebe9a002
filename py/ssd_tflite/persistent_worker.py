"""Bazel's persistent worker protocol (proto form), so that one process serves many actions.

Bazel starts a tool with `--persistent_worker` and writes WorkRequest messages
to its stdin, each preceded by its length as a varint; the tool answers each
with a WorkResponse framed the same way on stdout. The messages (package
blaze.worker, worker_protocol.proto) are declared here from their field numbers.
"""

import os
import sys
from typing import BinaryIO, Callable

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto


def _message_classes() -> tuple[type, type]:
    proto = descriptor_pb2.FileDescriptorProto(name="rules_ssd_tflite/worker_protocol.proto",
                                               package="blaze.worker", syntax="proto3")
    fields = {
        "Input": [("path", 1, _FIELD.TYPE_STRING, False), ("digest", 2, _FIELD.TYPE_BYTES, False)],
        "WorkRequest": [("arguments", 1, _FIELD.TYPE_STRING, True), ("inputs", 2, _FIELD.TYPE_MESSAGE, True),
                        ("request_id", 3, _FIELD.TYPE_INT32, False), ("cancel", 4, _FIELD.TYPE_BOOL, False),
                        ("verbosity", 5, _FIELD.TYPE_INT32, False), ("sandbox_dir", 6, _FIELD.TYPE_STRING, False)],
        "WorkResponse": [("exit_code", 1, _FIELD.TYPE_INT32, False), ("output", 2, _FIELD.TYPE_STRING, False),
                         ("request_id", 3, _FIELD.TYPE_INT32, False), ("was_cancelled", 4, _FIELD.TYPE_BOOL, False)],
    }
    for name, message_fields in fields.items():
        message = proto.message_type.add(name=name)
        for field_name, number, field_type, repeated in message_fields:
            message.field.add(name=field_name, number=number, type=field_type,
                              label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL,
                              type_name=".blaze.worker.Input" if field_type == _FIELD.TYPE_MESSAGE else None)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"blaze.worker.{name}"))
                 for name in ("WorkRequest", "WorkResponse"))


WorkRequest, WorkResponse = _message_classes()


def read_delimited(stream: BinaryIO, message_class: type):
    """The next length-prefixed message of `stream`, or None at its end."""
    size = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift:
                raise EOFError("the stream ended inside a message length")
            return None
        size |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"the stream ended after {len(data)} of a message's {size} bytes")
    return message_class.FromString(data)


def write_delimited(stream: BinaryIO, message) -> None:
    data = message.SerializeToString()
    size, prefix = len(data), bytearray()
    while True:
        prefix.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    stream.write(bytes(prefix) + data)
    stream.flush()


def serve(handle: Callable[[list[str]], tuple[int, str, bool]]) -> None:
    """Answers WorkRequests until stdin closes; `handle(arguments)` returns (exit code, output, quit after).

    The protocol keeps the process's original stdout; file descriptor 1 then
    points at stderr (Bazel's worker log), so nothing a tool or TensorFlow
    prints can corrupt a response.
    """
    responses = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while (request := read_delimited(sys.stdin.buffer, WorkRequest)) is not None:
        exit_code, output, quit_after = handle(list(request.arguments))
        write_delimited(responses, WorkResponse(exit_code=exit_code, output=output, request_id=request.request_id))
        if quit_after:
            return
