"""Consistency checks of a loaded .tflite model, run before any tool uses it.

A flatbuffer can be well-formed and still not describe a usable model: an
index past the end of its list, constant bytes that do not fill the tensor's
shape, a scale of 0, an operator that reads its own output. The generated
reader takes all of these, and a tool would then fail deep inside (an
IndexError, a RecursionError). `check` lists every such problem at once,
each naming the tensor or operator at fault. The operator rules (inputs,
outputs, options, the constants the tools read) are TFLite's, for the
operators these tools interpret; other operators have their indices checked.
"""

import dataclasses
import math
from typing import Iterable, Optional, Sequence, Union

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ssd_tflite import postprocess_options
from ssd_tflite.errors import InputError

# The tensor types whose constants the tools read (flatbuffer_model.constant), as numpy types.
NUMPY_TYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.INT64: np.int64,
}
BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
TYPE_NAMES = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
_OPTIONS_NAMES = {code: name for name, code in vars(schema.BuiltinOptions).items() if not name.startswith("_")}
# Bytes per element of the fixed-size types (sub-byte, string, resource and variant tensors have none).
_ELEMENT_BYTES = {getattr(schema.TensorType, name): size for name, size in {
    "FLOAT32": 4, "FLOAT16": 2, "BFLOAT16": 2, "FLOAT64": 8, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2,
    "INT32": 4, "UINT32": 4, "INT64": 8, "UINT64": 8, "BOOL": 1, "COMPLEX64": 8, "COMPLEX128": 16,
    "FLOAT8_E4M3FN": 1, "FLOAT8_E5M2": 1}.items()}
# The zero points that a quantized tensor of an integer type can hold.
_ZERO_POINT_RANGES = {
    **{getattr(schema.TensorType, name): (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)) for name, dtype in {
        "UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32,
        "INT64": np.int64}.items()},
    schema.TensorType.INT4: (-8, 7),
    schema.TensorType.UINT4: (0, 15),
}
_LISTED = 12
_NONE = schema.BuiltinOptions.NONE


@dataclasses.dataclass(frozen=True)
class _Operator:
    """What TFLite defines for an operator these tools interpret."""
    inputs: tuple[int, Optional[int]]  # fewest and most inputs (None: no limit)
    outputs: int
    options: tuple[int, ...]  # the builtin options it may carry (NONE: none)
    optional: frozenset[int] = frozenset()  # input positions that may be -1 (absent)
    read_inputs: tuple[tuple[int, int], ...] = ()  # (position, rank) of the inputs whose constants tools read


_OPERATORS = {
    "CONV_2D": _Operator((2, 3), 1, (schema.BuiltinOptions.Conv2DOptions,), frozenset({2}), ((1, 4), (2, 1))),
    "DEPTHWISE_CONV_2D": _Operator((2, 3), 1, (schema.BuiltinOptions.DepthwiseConv2DOptions,), frozenset({2}),
                                   ((1, 4), (2, 1))),
    "ADD": _Operator((2, 2), 1, (_NONE, schema.BuiltinOptions.AddOptions)),
    "CONCATENATION": _Operator((1, None), 1, (schema.BuiltinOptions.ConcatenationOptions,)),
    "RESHAPE": _Operator((1, 2), 1, (_NONE, schema.BuiltinOptions.ReshapeOptions), frozenset({1})),
    "LOGISTIC": _Operator((1, 1), 1, (_NONE,)),
    "DEQUANTIZE": _Operator((1, 1), 1, (_NONE,)),
    postprocess_options.CUSTOM_CODE: _Operator((3, 3), 4, (_NONE,), read_inputs=((2, 2),)),  # anchors [N, 4]
}


def check(model: schema.ModelT, path: str, file_size: int) -> None:
    """Raises InputError listing every inconsistency of `model`, read from `path` (`file_size` bytes)."""
    problems = _model_problems(model, file_size)
    if problems:
        shown = "\n".join("    " + problem for problem in problems[:_LISTED])
        more = f"\n    ... and {len(problems) - _LISTED} more" if len(problems) > _LISTED else ""
        raise InputError(f"{path}: the model is inconsistent ({len(problems)} problem(s)):\n{shown}{more}\n"
                         "  The file is damaged or was edited after conversion: use the file as its converter "
                         "wrote it, or convert the model again.")


def _model_problems(model: schema.ModelT, file_size: int) -> list[str]:
    """Every inconsistency of `model`, each naming the operator code, buffer, tensor or operator at fault."""
    codes = [code_name(code) for code in model.operatorCodes or []]
    problems = [*_operator_code_problems(model), *_buffer_problems(model, file_size), *_metadata_problems(model)]
    for index, subgraph in enumerate(model.subgraphs or []):
        prefix = f"subgraph {index}: " if len(model.subgraphs) > 1 else ""
        problems += [prefix + problem for problem in _Subgraph(model, subgraph, codes).problems()]
    return problems


def _utf8(text: Union[bytes, str, None]) -> Optional[str]:
    """`text` as str ('' when absent), or None when it is no valid UTF-8."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    try:
        return bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _shown(text: Union[bytes, str, None]) -> str:
    """`text` for a message, invalid bytes escaped."""
    decoded = _utf8(text)
    return decoded if decoded is not None else bytes(text).decode("utf-8", "backslashreplace")


def _values(vector: Optional[Sequence]) -> list:
    """A vector of the object API (None, a list or a numpy array) as a list of Python numbers."""
    return [] if vector is None else np.asarray(vector).tolist()


def _builtin(code: schema.OperatorCodeT) -> int:
    # Files from before 2020 fill only the int8 deprecated field; later ones both, or builtinCode past 127.
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def code_name(code: schema.OperatorCodeT) -> Optional[str]:
    """The operator's name (BUILTIN name or custom code), or None when it has no usable one."""
    if _builtin(code) == schema.BuiltinOperator.CUSTOM:
        return _utf8(code.customCode)
    return BUILTIN_NAMES.get(_builtin(code))


def _operator_code_problems(model: schema.ModelT) -> Iterable[str]:
    for index, code in enumerate(model.operatorCodes or []):
        if _builtin(code) != schema.BuiltinOperator.CUSTOM:
            if _builtin(code) not in BUILTIN_NAMES:
                yield f"operator code {index}: unknown builtin operator {_builtin(code)}"
        elif not code.customCode:
            yield f"operator code {index}: a custom operator without a custom code"
        elif code_name(code) is None:
            yield f"operator code {index}: its custom code {bytes(code.customCode)!r} is not UTF-8"


def _buffer_problems(model: schema.ModelT, file_size: int) -> Iterable[str]:
    for index, buffer in enumerate(model.buffers or []):
        if buffer.offset > 1 and buffer.offset + buffer.size > file_size:  # offset 0 or 1: data is inline
            yield (f"buffer {index}: its data at bytes {buffer.offset}..{buffer.offset + buffer.size} lies past "
                   f"the end of the file ({file_size} bytes)")


def _metadata_problems(model: schema.ModelT) -> Iterable[str]:
    buffers = len(model.buffers or [])
    for index, entry in enumerate(model.metadata or []):
        if _utf8(entry.name) is None:
            yield f"metadata entry {index} '{_shown(entry.name)}': its name is not UTF-8"
        if not 0 <= entry.buffer < buffers:
            yield f"metadata entry {index} '{_shown(entry.name)}': buffer {entry.buffer} is past the {buffers} buffers"
    for index in _values(model.metadataBuffer):
        if not 0 <= index < buffers:
            yield f"metadata buffer {index} is past the {buffers} buffers"


def _quantization_problems(tensor: schema.TensorT) -> list[str]:
    params = tensor.quantization
    if params is None:
        return []
    scales, zero_points = _values(params.scale), _values(params.zeroPoint)
    minimum, maximum = _values(params.min), _values(params.max)
    problems = []
    if len(scales) != len(zero_points):
        problems.append(f"{len(scales)} quantization scale(s) but {len(zero_points)} zero point(s)")
    wrong_scales = [scale for scale in scales if not (math.isfinite(scale) and scale > 0)]
    if wrong_scales:
        problems.append(f"quantization scale {wrong_scales[0]} is not a finite number > 0")
    low, high = _ZERO_POINT_RANGES.get(tensor.type, (-math.inf, math.inf))
    outside = [zero_point for zero_point in zero_points if not low <= zero_point <= high]
    if outside:
        problems.append(f"zero point {outside[0]} is outside the range of {TYPE_NAMES[tensor.type]}, {low}..{high}")
    shape, axis = _shape(tensor), params.quantizedDimension
    if len(scales) > 1 and not (0 <= axis < len(shape) and shape[axis] == len(scales)):
        problems.append(f"{len(scales)} per-channel scales along dimension {axis} of its shape {shape}")
    if len(minimum) != len(maximum) or len(minimum) not in (0, 1, max(len(scales), 1)):
        problems.append(f"{len(minimum)} min and {len(maximum)} max value(s) for {len(scales)} scale(s)")
    elif not all(math.isfinite(bottom) and math.isfinite(top) and bottom <= top
                 for bottom, top in zip(minimum, maximum)):
        problems.append(f"its stored ranges {list(zip(minimum, maximum))[:4]} are not all finite with min <= max")
    return problems


def _stored_bytes(buffer: schema.BufferT) -> int:
    if buffer.offset > 1:
        return buffer.size
    return 0 if buffer.data is None else len(buffer.data)


def _shape(tensor: schema.TensorT) -> list[int]:
    return _values(tensor.shape)


class _Subgraph:
    """The checks of one subgraph: its tensors, operators and data flow."""

    def __init__(self, model: schema.ModelT, subgraph: schema.SubGraphT, codes: list[Optional[str]]):
        self.model = model
        self.tensors = subgraph.tensors or []
        self.operators = subgraph.operators or []
        self.inputs, self.outputs = _values(subgraph.inputs), _values(subgraph.outputs)
        self.input_set = set(self.inputs)
        self.buffers = model.buffers or []
        self.names = [codes[operator.opcodeIndex] if 0 <= operator.opcodeIndex < len(codes) else None
                      for operator in self.operators]

    def problems(self) -> list[str]:
        problems = [problem for index in range(len(self.tensors)) for problem in self._tensor_problems(index)]
        problems += self._io_problems()
        problems += [problem for index in range(len(self.operators)) for problem in self._operator_problems(index)]
        return problems + self._graph_problems()

    # Naming, for messages.
    def tensor(self, index: int) -> str:
        return f"tensor {index} '{_shown(self.tensors[index].name)}'"

    def operator(self, index: int) -> str:
        name = self.names[index]
        return f"operator {index} ({name})" if name else f"operator {index}"

    def valid(self, index: int) -> bool:
        return 0 <= index < len(self.tensors)

    def is_constant(self, index: int) -> bool:
        buffer = self.tensors[index].buffer
        return 0 <= buffer < len(self.buffers) and _stored_bytes(self.buffers[buffer]) > 0

    # Tensors.
    def _tensor_problems(self, index: int) -> list[str]:
        tensor, where = self.tensors[index], self.tensor(index)
        problems = []
        if _utf8(tensor.name) is None:
            problems.append(f"{where}: its name is not UTF-8")
        if tensor.type not in TYPE_NAMES:
            problems.append(f"{where}: unknown tensor type {tensor.type}")
        if not 0 <= tensor.buffer < len(self.buffers):
            problems.append(f"{where}: buffer {tensor.buffer} is past the {len(self.buffers)} buffers")
        elif size_problem := self._size_problem(index):
            problems.append(f"{where}: {size_problem}")
        return problems + [f"{where}: {problem}" for problem in _quantization_problems(tensor)]

    def _size_problem(self, index: int) -> str:
        tensor = self.tensors[index]
        stored = _stored_bytes(self.buffers[tensor.buffer])
        if not stored or tensor.type not in _ELEMENT_BYTES:
            return ""
        shape = _shape(tensor)
        if any(dimension < 0 for dimension in shape):
            return f"a constant whose shape {shape} has a negative dimension"
        needed = math.prod(shape) * _ELEMENT_BYTES[tensor.type]
        if stored != needed:
            return f"its buffer holds {stored} bytes, its shape {shape} of {TYPE_NAMES[tensor.type]} needs {needed}"
        return ""

    def _io_problems(self) -> list[str]:
        return [f"subgraph {kind} {position} is tensor {index}, past the {len(self.tensors)} tensors"
                for kind, indices in (("input", self.inputs), ("output", self.outputs))
                for position, index in enumerate(indices) if not self.valid(index)]

    # Operators.
    def _operator_problems(self, index: int) -> list[str]:
        operator, where = self.operators[index], self.operator(index)
        codes = len(self.model.operatorCodes or [])
        problems = []
        if not 0 <= operator.opcodeIndex < codes:
            problems.append(f"{where}: operator code index {operator.opcodeIndex} is past the {codes} operator codes")
        inputs, outputs = _values(operator.inputs), _values(operator.outputs)
        problems += [f"{where}: input {position} is tensor {tensor}, past the {len(self.tensors)} tensors"
                     for position, tensor in enumerate(inputs) if tensor != -1 and not self.valid(tensor)]
        problems += [f"{where}: output {position} is tensor {tensor}, past the {len(self.tensors)} tensors"
                     for position, tensor in enumerate(outputs) if not self.valid(tensor)]
        rule = _OPERATORS.get(self.names[index])
        if rule:
            problems += [f"{where}: {problem}" for problem in self._rule_problems(operator, rule, inputs, outputs)]
        if self.names[index] == postprocess_options.CUSTOM_CODE:
            raw = b"" if operator.customOptions is None else bytes(bytearray(operator.customOptions))
            problems += [f"{where}: custom options: {problem}" for problem in postprocess_options.problems(raw)]
        return problems

    def _rule_problems(self, operator: schema.OperatorT, rule: _Operator, inputs: list[int],
                       outputs: list[int]) -> list[str]:
        fewest, most = rule.inputs
        problems = []
        if len(inputs) < fewest or (most is not None and len(inputs) > most):
            expected = f"{fewest}" if fewest == most else f"{fewest} to {most}" if most else f"{fewest} or more"
            problems.append(f"{len(inputs)} inputs, where it takes {expected}")
        problems += [f"input {position} is absent (-1), which it needs" for position, tensor in enumerate(inputs)
                     if tensor == -1 and position not in rule.optional]
        if len(outputs) != rule.outputs:
            problems.append(f"{len(outputs)} outputs, where it has {rule.outputs}")
        if operator.builtinOptionsType not in rule.options:
            carried = _OPTIONS_NAMES.get(operator.builtinOptionsType, operator.builtinOptionsType)
            problems.append(f"it carries {carried} options, where it takes "
                            + " or ".join(_OPTIONS_NAMES[options] for options in rule.options))
        for position, rank in rule.read_inputs:
            if position < len(inputs) and self.valid(inputs[position]):
                problems += self._read_constant_problems(inputs[position], position, rank)
        return problems

    def _read_constant_problems(self, index: int, position: int, rank: int) -> list[str]:
        tensor, problems = self.tensors[index], []
        if len(_shape(tensor)) != rank:
            problems.append(f"input {position}, {self.tensor(index)}, has shape {_shape(tensor)}, not of rank {rank}")
        if self.is_constant(index) and tensor.type not in NUMPY_TYPES:
            problems.append(f"input {position}, {self.tensor(index)}, is a constant of type "
                            f"{TYPE_NAMES.get(tensor.type, tensor.type)}, which these tools do not read (they read "
                            + ", ".join(TYPE_NAMES[code] for code in NUMPY_TYPES) + ")")
        return problems

    # Data flow.
    def _graph_problems(self) -> list[str]:
        writers: dict[int, int] = {}  # tensor -> the operator that outputs it
        problems = []
        for index, operator in enumerate(self.operators):
            for tensor in filter(self.valid, _values(operator.outputs)):
                if tensor in writers:
                    problems.append(f"{self.tensor(tensor)}: output of both {self.operator(writers[tensor])} "
                                    f"and {self.operator(index)}")
                elif self.is_constant(tensor) or tensor in self.input_set:
                    kind = "a constant" if self.is_constant(tensor) else "a subgraph input"
                    problems.append(f"{self.tensor(tensor)}: {self.operator(index)} outputs it, but it is {kind}")
                else:
                    writers[tensor] = index
        reads = [[tensor for tensor in _values(operator.inputs) if self.valid(tensor)] for operator in self.operators]
        cyclic = _in_cycles([sorted({writers[tensor] for tensor in read if tensor in writers}) for read in reads])
        if cyclic:
            problems.append("the data flow has a cycle through " + ", ".join(map(self.operator, cyclic)))
        else:
            problems += [f"{self.operator(index)} reads {self.tensor(tensor)} before {self.operator(writers[tensor])} "
                         "writes it" for index, read in enumerate(reads) for tensor in read
                         if writers.get(tensor, -1) > index]
        return problems + self._unwritten_reads(reads, writers)

    def _unwritten_reads(self, reads: list[list[int]], writers: dict[int, int]) -> list[str]:
        """Tensors read that nothing gives a value: no operator, subgraph input, constant or variable."""
        def unwritten(tensor: int) -> bool:
            known = 0 <= self.tensors[tensor].buffer < len(self.buffers)  # else its buffer index is the problem
            return known and not (tensor in writers or tensor in self.input_set or self.is_constant(tensor)
                                  or self.tensors[tensor].isVariable or 0 in _shape(self.tensors[tensor]))

        never = " is never written (no operator outputs it, and it is neither a subgraph input nor a constant)"
        return ([f"{self.operator(index)}: its input {self.tensor(tensor)}{never}"
                 for index, read in enumerate(reads) for tensor in read if unwritten(tensor)]
                + [f"subgraph output {self.tensor(tensor)}{never}"
                   for tensor in filter(self.valid, self.outputs) if unwritten(tensor)])


def _in_cycles(producers: list[list[int]]) -> list[int]:
    """The operators on a cycle (or between cycles) of a graph given as each operator's producers.

    Iterative: operators whose producers are all settled are removed (Kahn's
    algorithm), then, among the rest, those that feed none of the rest.
    """
    consumers: list[list[int]] = [[] for _ in producers]
    for index, feeding in enumerate(producers):
        for producer in feeding:
            consumers[producer].append(index)
    remaining = _unsettled(set(range(len(producers))), producers, consumers)
    return sorted(_unsettled(remaining, consumers, producers))


def _unsettled(nodes: set[int], before: list[list[int]], after: list[list[int]]) -> set[int]:
    """The nodes that never run out of `before` neighbours (within `nodes`) as settled ones are removed."""
    pending = {node: sum(1 for other in before[node] if other in nodes) for node in nodes}
    ready = [node for node, count in pending.items() if count == 0]
    left = set(nodes)
    while ready:
        node = ready.pop()
        left.discard(node)
        for other in after[node]:
            if other in left:
                pending[other] -= 1
                if pending[other] == 0:
                    ready.append(other)
    return left
