"""Converts a frozen GraphDef to a `.tflite` flatbuffer with TensorFlow's converter.

Settings mirror the classic TOCO command line: FLOAT or QUANTIZED_UINT8
inference, mean/std of the uint8 input, default ranges for tensors without
FakeQuant ranges, and custom ops (TFLite_Detection_PostProcess).
"""

import dataclasses
from typing import Optional

import tensorflow as tf

from ssd_tflite.errors import UserError

INFERENCE_TYPES = {"FLOAT": tf.float32, "QUANTIZED_UINT8": tf.uint8}


class ConversionError(UserError):
    """The converter rejected the graph or the settings."""


@dataclasses.dataclass(frozen=True)
class ConversionSettings:
    input_arrays: tuple[str, ...]
    output_arrays: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    inference_type: str = "FLOAT"
    inference_input_type: Optional[str] = None
    mean_values: tuple[float, ...] = ()
    std_values: tuple[float, ...] = ()
    default_ranges: Optional[tuple[float, float]] = None
    change_concat_input_ranges: bool = False
    allow_custom_ops: bool = False

    def validate(self) -> None:
        """Raises ConversionError naming the flag at fault."""
        for flag, value in (("inference_type", self.inference_type),
                            ("inference_input_type", self.inference_input_type or self.inference_type)):
            if value not in INFERENCE_TYPES:
                raise ConversionError(f"--{flag}={value} is not supported; use one of {', '.join(INFERENCE_TYPES)}")
        if len(self.input_shapes) != len(self.input_arrays):
            raise ConversionError(f"--input_shapes gives {len(self.input_shapes)} shape(s) "
                                  f"for {len(self.input_arrays)} --input_arrays")
        quantized_input = (self.inference_input_type or self.inference_type) == "QUANTIZED_UINT8"
        if quantized_input and (len(self.mean_values) != len(self.input_arrays)
                                or len(self.std_values) != len(self.input_arrays)):
            raise ConversionError("a QUANTIZED_UINT8 input needs one --mean_values and one --std_values "
                                  "per --input_arrays entry")
        if any(std == 0 for std in self.std_values):
            raise ConversionError("--std_values must not be 0")
        if self.default_ranges is not None and self.default_ranges[0] >= self.default_ranges[1]:
            raise ConversionError(f"--default_ranges_min={self.default_ranges[0]} must be below "
                                  f"--default_ranges_max={self.default_ranges[1]}")


def convert(graph_def_file: str, settings: ConversionSettings) -> bytes:
    """Returns the `.tflite` flatbuffer for the frozen graph in `graph_def_file`."""
    settings.validate()
    try:
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            graph_def_file, list(settings.input_arrays), list(settings.output_arrays),
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
