"""Bazel's persistent worker protocol (proto form), so that one process serves many actions.

Bazel starts a tool with `--persistent_worker` and writes WorkRequest messages
to its stdin, each preceded by its length as a varint; the tool answers each
with a WorkResponse framed the same way on stdout. The messages (package
blaze.worker, worker_protocol.proto) are declared here from their field numbers,
with only the fields the tools read or write.

Input is read defensively: a length is at most a 10-byte (64-bit) varint and
MAX_MESSAGE_BYTES, and a message is read in chunks as it arrives, never
allocated at its declared size. A complete frame that is no WorkRequest gets a
failed WorkResponse (request_id 0, the request's own is unknown) and the worker
reads on; a stream it cannot find the next frame in (a bad length, an end
inside a message) ends the worker with one line on stderr and exit code 1.
"""

import os
import sys
from typing import BinaryIO, Callable, Optional

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ssd_tflite.errors import ProtocolError

_FIELD = descriptor_pb2.FieldDescriptorProto

# A WorkRequest holds the action's arguments and one (path, digest) per input, about 150 bytes each:
# 16 MiB is some 100,000 inputs, far more than any action of these rules has (an export calibrated on
# a few thousand images has a few thousand), and a bound on what a garbage length can make us read.
MAX_MESSAGE_BYTES = 16 << 20
_MAX_VARINT_BYTES = 10  # 7 bits per byte: the 64 bits of a protobuf varint
_CHUNK_BYTES = 1 << 16


Handler = Callable[[list[str]], tuple[int, str]]  # arguments -> (exit code, output)


def _message_classes() -> tuple[type, type]:
    proto = descriptor_pb2.FileDescriptorProto(name="rules_ssd_tflite/worker_protocol.proto",
                                               package="blaze.worker", syntax="proto3")
    # Only the fields we read or write. A request's others (inputs 2, cancel 4, verbosity 5,
    # sandbox_dir 6) arrive too: the parser skips them as unknown fields.
    fields = {
        "WorkRequest": [("arguments", 1, _FIELD.TYPE_STRING, True), ("request_id", 3, _FIELD.TYPE_INT32, False)],
        "WorkResponse": [("exit_code", 1, _FIELD.TYPE_INT32, False), ("output", 2, _FIELD.TYPE_STRING, False),
                         ("request_id", 3, _FIELD.TYPE_INT32, False)],
    }
    for name, message_fields in fields.items():
        message = proto.message_type.add(name=name)
        for field_name, number, field_type, repeated in message_fields:
            message.field.add(name=field_name, number=number, type=field_type,
                              label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"blaze.worker.{name}"))
                 for name in ("WorkRequest", "WorkResponse"))


WorkRequest, WorkResponse = _message_classes()


def _read_length(stream: BinaryIO) -> Optional[int]:
    """The varint that starts the next frame, or None if the stream ends before it."""
    length = 0
    for index in range(_MAX_VARINT_BYTES):
        byte = stream.read(1)
        if not byte:
            if index:
                raise ProtocolError("the stream ended inside a message length")
            return None
        length |= (byte[0] & 0x7F) << (7 * index)
        if not byte[0] & 0x80:
            if length >> 64:
                raise ProtocolError("a message length does not fit in 64 bits")
            return length
    raise ProtocolError(f"a message length is no varint: it runs on past {_MAX_VARINT_BYTES} bytes")


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """`size` bytes of `stream`, read in chunks as they arrive."""
    chunks, received = [], 0
    while received < size:
        chunk = stream.read(min(size - received, _CHUNK_BYTES))
        if not chunk:
            raise ProtocolError(f"the stream ended after {received} of a message's {size} bytes")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO) -> Optional[bytes]:
    """The next length-prefixed message of `stream`, unparsed, or None at its end; ProtocolError if malformed."""
    size = _read_length(stream)
    if size is None:
        return None
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"a message of {size} bytes, more than the {MAX_MESSAGE_BYTES} a worker reads")
    return _read_exactly(stream, size)


def read_delimited(stream: BinaryIO, message_class: type):
    """The next length-prefixed message of `stream`, or None at its end."""
    frame = read_frame(stream)
    return None if frame is None else message_class.FromString(frame)


def length_prefix(size: int) -> bytes:
    """The varint that frames a message of `size` bytes."""
    prefix = bytearray()
    while True:
        prefix.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            return bytes(prefix)


def write_delimited(stream: BinaryIO, message) -> None:
    data = message.SerializeToString()
    stream.write(length_prefix(len(data)) + data)
    stream.flush()


def _answer(frame: bytes, handle: Handler, tool: str) -> WorkResponse:
    """The response to one frame."""
    try:
        request = WorkRequest.FromString(frame)
    except DecodeError as error:
        return WorkResponse(exit_code=1, output=f"{tool}: error: malformed WorkRequest of {len(frame)} bytes: "
                                                f"{error}\n")
    exit_code, output = handle(list(request.arguments))
    return WorkResponse(exit_code=exit_code, output=output, request_id=request.request_id)


def serve(handle: Handler, tool: str) -> int:
    """Answers WorkRequests until stdin closes; `handle(arguments)` returns (exit code, output).

    Returns the process's exit code: 0 when stdin ends between messages, 1
    when the streams fail (reported on stderr as
    `tool: error: ...`). The protocol keeps the process's original stdout;
    file descriptor 1 then points at stderr (Bazel's worker log), so nothing
    a tool or TensorFlow prints can corrupt a response.
    """
    responses = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        while (frame := read_frame(sys.stdin.buffer)) is not None:
            write_delimited(responses, _answer(frame, handle, tool))
    except ProtocolError as error:
        print(f"{tool}: error: persistent worker input: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        print(f"{tool}: error: persistent worker output: its reader closed it", file=sys.stderr)
        return 1
    return 0
