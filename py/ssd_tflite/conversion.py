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

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.lite.python.convert_phase import ConverterError

from ssd_tflite import toco_layout
from ssd_tflite.converter_settings import ConverterSettings
from ssd_tflite.errors import ConversionError

# The converter's types of ConverterSettings' inference types.
TENSOR_TYPES = {"FLOAT": tf.float32, "QUANTIZED_UINT8": tf.uint8}


def _read_graph_def(graph_def_file: str) -> tf.compat.v1.GraphDef:
    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(graph_def_file, "rb") as graph_file:
            graph_def.ParseFromString(graph_file.read())
    except OSError as error:
        raise ConversionError(f"{graph_def_file}: cannot read the graph: {error.strerror}") from None
    except DecodeError:
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


def convert(graph_def_file: str, settings: ConverterSettings) -> bytes:
    """Returns the `.tflite` flatbuffer for the frozen graph in `graph_def_file`."""
    if not settings.input_shapes:
        settings = dataclasses.replace(settings, input_shapes=placeholder_shapes(graph_def_file, settings.input_arrays))
    with tempfile.TemporaryDirectory() as scratch:
        source = _weights_over_256_levels(graph_def_file, scratch) if settings.ignore_weights_narrow_range \
            else graph_def_file
        model = _convert(source, settings, graph_def_file)
    if settings.inference_type == "QUANTIZED_UINT8":
        model = toco_layout.apply(model, graph_def_file)
    return model


def _convert(source: str, settings: ConverterSettings, graph_def_file: str) -> bytes:
    try:
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            source, list(settings.input_arrays), list(settings.output_arrays),
            input_shapes=dict(zip(settings.input_arrays, (list(shape) for shape in settings.input_shapes))))
    except (ValueError, IOError, tf.errors.OpError) as error:
        raise ConversionError(f"{graph_def_file}: {error}") from None
    converter.inference_type = TENSOR_TYPES[settings.inference_type]
    converter.inference_input_type = TENSOR_TYPES[settings.input_type]
    if settings.mean_values:
        converter.quantized_input_stats = {
            name: (mean, std) for name, mean, std in zip(settings.input_arrays, settings.mean_values, settings.std_values)}
    if settings.default_ranges is not None:
        converter.default_ranges_stats = settings.default_ranges
    converter.change_concat_input_ranges = settings.change_concat_input_ranges
    converter.allow_custom_ops = settings.allow_custom_ops
    try:
        return converter.convert()
    except (ConverterError, ValueError) as error:  # its own failures, and settings it refuses
        raise ConversionError(f"{graph_def_file}: the TFLite converter failed: {error}") from None
