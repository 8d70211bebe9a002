"""Converts a frozen GraphDef to a `.tflite` flatbuffer with TensorFlow's converter.

Settings mirror the classic TOCO command line: FLOAT or QUANTIZED_UINT8
inference, mean/std of the uint8 input, default ranges for tensors without
FakeQuant ranges, and custom ops (TFLite_Detection_PostProcess). QUANTIZED_UINT8
models get TOCO's layout (see toco_layout). `ignore_weights_narrow_range`
quantizes weights over 256 levels, as TOCO did until mid-2018.
"""

import dataclasses
import os
import tempfile
from typing import Optional

import tensorflow as tf

from ssd_tflite import toco_layout
from ssd_tflite.errors import UserError

INFERENCE_TYPES = {"FLOAT": tf.float32, "QUANTIZED_UINT8": tf.uint8}


class ConversionError(UserError):
    """The converter rejected the graph or the settings."""


@dataclasses.dataclass(frozen=True)
class ConversionSettings:
    input_arrays: tuple[str, ...]
    output_arrays: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...] = ()  # empty: the graph's placeholder shapes
    inference_type: str = "FLOAT"
    inference_input_type: Optional[str] = None
    mean_values: tuple[float, ...] = ()
    std_values: tuple[float, ...] = ()
    default_ranges: Optional[tuple[float, float]] = None
    change_concat_input_ranges: bool = False
    allow_custom_ops: bool = False
    ignore_weights_narrow_range: bool = False

    def validate(self) -> None:
        """Raises ConversionError naming the flag at fault."""
        for flag, value in (("inference_type", self.inference_type),
                            ("inference_input_type", self.inference_input_type or self.inference_type)):
            if value not in INFERENCE_TYPES:
                raise ConversionError(f"--{flag}={value} is not supported; use one of {', '.join(INFERENCE_TYPES)}")
        if self.input_shapes and len(self.input_shapes) != len(self.input_arrays):
            raise ConversionError(f"--input_shapes gives {len(self.input_shapes)} shape(s) "
                                  f"for {len(self.input_arrays)} --input_arrays")
        quantized_input = (self.inference_input_type or self.inference_type) == "QUANTIZED_UINT8"
        if quantized_input and (len(self.mean_values) != len(self.input_arrays)
                                or len(self.std_values) != len(self.input_arrays)):
            raise ConversionError("a QUANTIZED_UINT8 input needs one --mean_values and one --std_values "
                                  "per --input_arrays entry")
        if any(std == 0 for std in self.std_values):
            raise ConversionError("--std_values must not be 0")
        if self.ignore_weights_narrow_range and self.inference_type != "QUANTIZED_UINT8":
            raise ConversionError("--ignore_weights_narrow_range changes how weights are quantized: "
                                  "it needs --inference_type=QUANTIZED_UINT8")
        if self.default_ranges is not None and self.default_ranges[0] >= self.default_ranges[1]:
            raise ConversionError(f"--default_ranges_min={self.default_ranges[0]} must be below "
                                  f"--default_ranges_max={self.default_ranges[1]}")


def _read_graph_def(graph_def_file: str) -> tf.compat.v1.GraphDef:
    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(graph_def_file, "rb") as graph_file:
            graph_def.ParseFromString(graph_file.read())
    except OSError as error:
        raise ConversionError(f"{graph_def_file}: cannot read the graph: {error.strerror}") from None
    except Exception:  # protobuf's DecodeError and its C++ twin share no public base
        raise ConversionError(f"{graph_def_file}: not a binary GraphDef") from None
    return graph_def


def placeholder_shapes(graph_def_file: str, input_arrays: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """The static shapes of the graph's input placeholders: TOCO's default for --input_shapes."""
    nodes = {node.name: node for node in _read_graph_def(graph_def_file).node}
    shapes = []
    for name in input_arrays:
        node = nodes.get(name)
        if node is None or node.op != "Placeholder":
            raise ConversionError(f"{graph_def_file}: --input_arrays names {name}, which is not a placeholder "
                                  "of the graph")
        dims = tuple(dim.size for dim in node.attr["shape"].shape.dim)
        if node.attr["shape"].shape.unknown_rank or not dims or min(dims) < 1:
            raise ConversionError(f"{graph_def_file}: placeholder {name} has no static shape; give --input_shapes")
        shapes.append(dims)
    return tuple(shapes)


def weight_fake_quants(graph_def: tf.compat.v1.GraphDef) -> list[tf.compat.v1.NodeDef]:
    """FakeQuant nodes of constants (weights): those no placeholder reaches."""
    consumers: dict[str, list[str]] = {}
    for node in graph_def.node:
        for source in node.input:
            consumers.setdefault(source.lstrip("^").split(":")[0], []).append(node.name)
    reached = set()
    pending = [node.name for node in graph_def.node if node.op == "Placeholder"]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(consumers.get(name, []))
    return [node for node in graph_def.node if node.op.startswith("FakeQuantWithMinMax") and node.name not in reached]


def _weights_over_256_levels(graph_def_file: str, directory: str) -> str:
    """A copy of the graph whose weight FakeQuants have narrow_range false (bytes 0..255)."""
    graph_def = _read_graph_def(graph_def_file)
    for node in weight_fake_quants(graph_def):
        node.attr["narrow_range"].b = False
    path = os.path.join(directory, os.path.basename(graph_def_file))
    with open(path, "wb") as graph_file:
        graph_file.write(graph_def.SerializeToString(deterministic=True))
    return path


def convert(graph_def_file: str, settings: ConversionSettings) -> bytes:
    """Returns the `.tflite` flatbuffer for the frozen graph in `graph_def_file`."""
    settings.validate()
    if not settings.input_shapes:
        settings = dataclasses.replace(settings, input_shapes=placeholder_shapes(graph_def_file, settings.input_arrays))
    with tempfile.TemporaryDirectory() as scratch:
        source = _weights_over_256_levels(graph_def_file, scratch) if settings.ignore_weights_narrow_range \
            else graph_def_file
        model = _convert(source, settings, graph_def_file)
    if settings.inference_type == "QUANTIZED_UINT8":
        model = toco_layout.apply(model, graph_def_file)
    return model


def _convert(source: str, settings: ConversionSettings, graph_def_file: str) -> bytes:
    try:
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            source, list(settings.input_arrays), list(settings.output_arrays),
            input_shapes=dict(zip(settings.input_arrays, (list(shape) for shape in settings.input_shapes))))
    except (ValueError, IOError, tf.errors.OpError) as error:
        raise ConversionError(f"{graph_def_file}: {error}") from None
    converter.inference_type = INFERENCE_TYPES[settings.inference_type]
    converter.inference_input_type = INFERENCE_TYPES[settings.inference_input_type or settings.inference_type]
    if settings.mean_values:
        converter.quantized_input_stats = {
            name: (mean, std) for name, mean, std in zip(settings.input_arrays, settings.mean_values, settings.std_values)}
    if settings.default_ranges is not None:
        converter.default_ranges_stats = settings.default_ranges
    converter.change_concat_input_ranges = settings.change_concat_input_ranges
    converter.allow_custom_ops = settings.allow_custom_ops
    try:
        return converter.convert()
    except Exception as error:  # the converter raises several unrelated types
        raise ConversionError(f"{graph_def_file}: the TFLite converter failed: {error}") from None
