"""Reading and writing `.tflite` flatbuffers as mutable Python objects.

A thin layer over TensorFlow's generated schema classes (object API): load a
model, look up tensors, operators and constant values, and pack it again.
"""

import dataclasses
from typing import Optional

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema  # TensorFlow-free: light tools start fast

from ssd_tflite.errors import InputError

FILE_IDENTIFIER = b"TFL3"
POSTPROCESS_CUSTOM_CODE = b"TFLite_Detection_PostProcess"
NUMPY_TYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.INT64: np.int64,
}
BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def load(content: bytes, path: str) -> schema.ModelT:
    """The model in `content` (read from `path`, named in errors)."""
    if len(content) < 8 or content[4:8] != FILE_IDENTIFIER:
        raise InputError(f"{path}: not a TFLite model (no '{FILE_IDENTIFIER.decode()}' file identifier)")
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    except Exception as error:  # the generated reader raises whatever a corrupt buffer provokes
        raise InputError(f"{path}: corrupt TFLite flatbuffer ({type(error).__name__}: {error})") from None
    if not model.subgraphs:
        raise InputError(f"{path}: the model has no subgraph")
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
    code = model.operatorCodes[operator.opcodeIndex]
    # Files from before 2020 fill only the int8 deprecated field; later ones both, or builtinCode past 127.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return code.customCode.decode()
    return BUILTIN_NAMES[builtin]


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
    return np.frombuffer(bytes(bytearray(data)), NUMPY_TYPES[tensor.type]).reshape(tuple(tensor.shape))


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
