"""Reading and writing `.tflite` flatbuffers as mutable Python objects.

A thin layer over TensorFlow's generated schema classes (object API): load a
model, look up tensors, operators and constant values, and pack it again.
Every model loaded is checked for consistency first (tflite_checks), so that
the lookups here cannot fail on an index, type or size a file got wrong.
"""

import dataclasses
import os
import resource
import struct
from typing import Optional

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema  # TensorFlow-free: light tools start fast

from ssd_tflite import postprocess_options, tflite_checks
from ssd_tflite.errors import InputError

FILE_IDENTIFIER = b"TFL3"
POSTPROCESS_CUSTOM_CODE = postprocess_options.CUSTOM_CODE.encode()


# The object API copies every string and table a model points to, once per reference: a crafted
# file whose tables share one large string unpacks to much more than its size (measured: 1.3 MB
# whose 20,000 tensors share a 1 MiB name, 20 GB). Ours grow memory by under 0.1x their size (numpy
# views of their buffers): ResNet50 FPN float's 198 MiB by 0.5 MiB.
UNPACK_MEMORY_FACTOR = 16
UNPACK_MEMORY_FLOOR = 256 << 20
# What the generated reader, which checks no offset, raises for a damaged buffer (measured on truncated
# files, flipped bytes and offsets set to edge values): struct.error for an offset past the end,
# ValueError for a vector past the end, TypeError for an offset that is no uint32.
_UNPACK_ERRORS = (struct.error, ValueError, TypeError)


def _unpacks_within_bounds(content: bytes) -> bool:
    """Whether the object API unpacks `content` within UNPACK_MEMORY_FACTOR x its size (+ a floor).

    Tried in a forked child with that much more address space than this process has, so that
    a crafted file cannot exhaust this machine's memory. Linux only (/proc, an enforced
    RLIMIT_AS); elsewhere every file passes.
    """
    allowance = UNPACK_MEMORY_FACTOR * len(content) + UNPACK_MEMORY_FLOOR
    try:
        with open("/proc/self/statm") as statm:
            address_space = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        return True
    child = os.fork()
    if child == 0:  # only flatbuffers' pure-Python reader runs here, and the child exits whatever it raises
        exit_code = 0  # also for a corrupt buffer: the unpack in this process reports it
        try:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            bound = address_space + allowance
            resource.setrlimit(resource.RLIMIT_AS, (bound if hard == resource.RLIM_INFINITY else min(bound, hard), hard))
            schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
        except MemoryError:
            exit_code = 1
        finally:
            os._exit(exit_code)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) == 0


def load(content: bytes, path: str) -> schema.ModelT:
    """The model in `content` (read from `path`, named in errors), checked for consistency."""
    if len(content) < 8 or content[4:8] != FILE_IDENTIFIER:
        raise InputError(f"{path}: not a TFLite model (no '{FILE_IDENTIFIER.decode()}' file identifier)")
    if not _unpacks_within_bounds(content):
        raise InputError(f"{path}: reading its {len(content)} bytes takes more than {UNPACK_MEMORY_FACTOR} times "
                         "that in memory: its tables share large strings or vectors, as a crafted file's do")
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    except _UNPACK_ERRORS as error:
        raise InputError(f"{path}: corrupt TFLite flatbuffer ({type(error).__name__}: {error})") from None
    if not model.subgraphs:
        raise InputError(f"{path}: the model has no subgraph")
    tflite_checks.check(model, path, len(content))
    return model


def read(path: str) -> schema.ModelT:
    """The model stored in the file `path`."""
    try:
        with open(path, "rb") as model_file:
            content = model_file.read()
    except OSError as error:
        raise InputError(f"{path}: cannot read the model: {error.strerror}") from None
    return load(content, path)


def pack(model: schema.ModelT) -> bytes:
    """The flatbuffer bytes of `model`, with the TFLite file identifier."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def opcode_name(model: schema.ModelT, operator: schema.OperatorT) -> str:
    """BUILTIN name (e.g. CONV_2D) or the custom code of an operator."""
    return tflite_checks.code_name(model.operatorCodes[operator.opcodeIndex])


def tensor_name(tensor: schema.TensorT) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name


@dataclasses.dataclass(frozen=True)
class Quantization:
    """Per-tensor quantization: real = scale * (q - zero_point), and the stored min/max if any."""
    scale: float
    zero_point: int
    minimum: Optional[float]
    maximum: Optional[float]


def quantization(tensor: schema.TensorT) -> Optional[Quantization]:
    """The tensor's per-tensor quantization, or None for a float tensor."""
    params = tensor.quantization
    if params is None or params.scale is None or len(params.scale) == 0:
        return None
    stored = lambda values: None if values is None or len(values) == 0 else float(values[0])  # noqa: E731
    return Quantization(float(params.scale[0]), int(params.zeroPoint[0]), stored(params.min), stored(params.max))


def constant(model: schema.ModelT, tensor: schema.TensorT) -> Optional[np.ndarray]:
    """The value of a constant tensor (its buffer's data), or None when it has none."""
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    shape = () if tensor.shape is None else tuple(tensor.shape)
    return np.frombuffer(bytes(bytearray(data)), tflite_checks.NUMPY_TYPES[tensor.type]).reshape(shape)


def producers(subgraph: schema.SubGraphT) -> dict[int, int]:
    """Tensor index -> index of the operator that outputs it."""
    return {tensor: index for index, operator in enumerate(subgraph.operators) for tensor in operator.outputs}


def postprocess_operator(model: schema.ModelT, path: str) -> schema.OperatorT:
    """The model's single TFLite_Detection_PostProcess operator."""
    found = [operator for operator in model.subgraphs[0].operators
             if opcode_name(model, operator) == POSTPROCESS_CUSTOM_CODE.decode()]
    if len(found) != 1:
        raise InputError(f"{path}: expected one {POSTPROCESS_CUSTOM_CODE.decode()} operator, found {len(found)}")
    return found[0]


def with_metadata(content: bytes, path: str, name: str, data: bytes) -> bytes:
    """The model `content` (from `path`) with `data` stored in a new buffer listed in its metadata as `name`."""
    model = load(content, path)
    if any(tensor_name(entry) == name for entry in model.metadata or []):
        raise InputError(f"{path}: the model already carries metadata {name}")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return pack(model)


# The contract of a detect.tflite (TFLite_Detection_PostProcess). SSD inputs are 300x300 to
# 1024x1024; 4096 bounds a float input tensor at 201 MB.
MAX_INPUT_SIDE = 4096
IMAGE_INPUT_TYPES = {schema.TensorType.UINT8: np.uint8, schema.TensorType.FLOAT32: np.float32}
DETECTION_OUTPUTS = ("boxes", "classes", "scores", "count")
DETECTION_CONTRACT = ("a detect.tflite (TFLite_Detection_PostProcess) takes one image [1, height, width, 3] of uint8 "
                      "or float32 and gives boxes [1, D, 4], classes [1, D], scores [1, D] and count [1], all float32")


def image_input(model: schema.ModelT, path: str) -> tuple[int, int, type]:
    """Height, width and numpy type of the model's image input; InputError unless it has the detect.tflite contract."""
    subgraph = model.subgraphs[0]
    inputs = [] if subgraph.inputs is None else list(subgraph.inputs)
    outputs = [] if subgraph.outputs is None else list(subgraph.outputs)
    if len(inputs) != 1 or len(outputs) != len(DETECTION_OUTPUTS):
        raise InputError(f"{path}: {len(inputs)} input(s) and {len(outputs)} output(s), but {DETECTION_CONTRACT}")
    tensor = subgraph.tensors[inputs[0]]
    shape = [] if tensor.shape is None else [int(dim) for dim in tensor.shape]
    if (len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or tensor.type not in IMAGE_INPUT_TYPES
            or not all(1 <= side <= MAX_INPUT_SIDE for side in shape[1:3])):
        raise InputError(f"{path}: its input is {shape} of {tflite_checks.TYPE_NAMES.get(tensor.type, tensor.type)}, "
                         f"but {DETECTION_CONTRACT} (sides up to {MAX_INPUT_SIDE})")
    return shape[1], shape[2], IMAGE_INPUT_TYPES[tensor.type]
