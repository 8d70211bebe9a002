"""The converter's settings: TOCO's command-line flags, parsed and checked in one place.

The ssd_tflite_model rule resolves the settings (the inference type's default
included) and gives the same flags to the converter (toco) and to the model
contract (model_contract): both parse them here into one ConverterSettings.
The checks that need the pipeline.config are the contract's (contract.check).
Free of TensorFlow, so that the contract starts fast.
"""

import dataclasses
import math
from typing import Optional

from absl import flags

from ssd_tflite.errors import ConversionError

INFERENCE_TYPES = ("FLOAT", "QUANTIZED_UINT8")
# The largest float32, plus half a step: what rounds to a finite float32.
FLOAT32_LIMIT = 3.4028235677973366e38


def _listed(values: tuple[float, ...]) -> str:
    return ",".join(f"{value:g}" for value in values)


@dataclasses.dataclass(frozen=True)
class ConverterSettings:
    """What the converter is asked to do, checked on creation (ConversionError naming the flag at fault)."""
    input_arrays: tuple[str, ...]
    output_arrays: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...] = ()  # empty: the graph's placeholder shapes
    inference_type: str = "FLOAT"
    inference_input_type: Optional[str] = None  # None: inference_type
    mean_values: tuple[float, ...] = ()
    std_values: tuple[float, ...] = ()
    default_ranges: Optional[tuple[float, float]] = None
    change_concat_input_ranges: bool = False
    allow_custom_ops: bool = False
    ignore_weights_narrow_range: bool = False

    @property
    def input_type(self) -> str:
        """The type of the input arrays."""
        return self.inference_input_type or self.inference_type

    def __post_init__(self) -> None:
        for flag, value in (("inference_type", self.inference_type), ("inference_input_type", self.input_type)):
            if value not in INFERENCE_TYPES:
                raise ConversionError(f"--{flag}={value} is not supported; use one of {', '.join(INFERENCE_TYPES)}")
        if self.input_shapes and len(self.input_shapes) != len(self.input_arrays):
            raise ConversionError(f"--input_shapes gives {len(self.input_shapes)} shape(s) "
                                  f"for {len(self.input_arrays)} --input_arrays")
        if self.input_type == "QUANTIZED_UINT8" and (len(self.mean_values) != len(self.input_arrays)
                                                     or len(self.std_values) != len(self.input_arrays)):
            raise ConversionError("a QUANTIZED_UINT8 input needs one --mean_values and one --std_values "
                                  "per --input_arrays entry")
        for flag, values in (("mean_values", self.mean_values), ("std_values", self.std_values)):
            if not all(math.isfinite(value) for value in values):
                raise ConversionError(f"--{flag}={_listed(values)}: expected finite numbers")
        if not all(std > 0 for std in self.std_values):
            raise ConversionError(f"--std_values={_listed(self.std_values)}: each must be positive (uint8 steps "
                                  "per real unit)")
        if self.input_type == "QUANTIZED_UINT8" and not all(mean == int(mean) and 0 <= mean <= 255
                                                            for mean in self.mean_values):
            raise ConversionError(f"--mean_values={_listed(self.mean_values)}: a uint8 input's mean is its zero "
                                  "point, an integer from 0 to 255")
        if any(dim < 1 for shape in self.input_shapes for dim in shape):
            raise ConversionError(f"--input_shapes: every dimension must be at least 1, got "
                                  f"{':'.join(','.join(map(str, shape)) for shape in self.input_shapes)}")
        if self.default_ranges is not None and not all(math.isfinite(end) and abs(end) < FLOAT32_LIMIT
                                                       for end in self.default_ranges):
            raise ConversionError(f"--default_ranges_min={self.default_ranges[0]} and --default_ranges_max="
                                  f"{self.default_ranges[1]}: expected finite float32 numbers")
        if self.ignore_weights_narrow_range and self.inference_type != "QUANTIZED_UINT8":
            raise ConversionError("--ignore_weights_narrow_range changes how weights are quantized: "
                                  "it needs --inference_type=QUANTIZED_UINT8")
        if self.default_ranges is not None and self.default_ranges[0] >= self.default_ranges[1]:
            raise ConversionError(f"--default_ranges_min={self.default_ranges[0]} must be below "
                                  f"--default_ranges_max={self.default_ranges[1]}")


def define_flags() -> None:
    """Defines TOCO's flags of the settings (the files, --input_file and --output_file, are the converter's)."""
    flags.DEFINE_enum("input_format", "TENSORFLOW_GRAPHDEF", ["TENSORFLOW_GRAPHDEF"], "Format of --input_file.")
    flags.DEFINE_enum("output_format", "TFLITE", ["TFLITE"], "Format of --output_file.")
    flags.DEFINE_string("input_shapes", None, "Shapes of the input arrays: comma-separated dims, ':' between "
                        "arrays; default: the shapes of the graph's placeholders.")
    flags.DEFINE_list("input_arrays", None, "Names of the input arrays.")
    flags.DEFINE_list("output_arrays", None, "Names of the output arrays.")
    flags.DEFINE_string("inference_type", "FLOAT", "FLOAT or QUANTIZED_UINT8: type of the model's arrays.")
    flags.DEFINE_string("inference_input_type", None, "Type of the input arrays (default: --inference_type).")
    flags.DEFINE_list("mean_values", [], "Per input: the uint8 value that means real 0 (real = (q - mean) / std).")
    flags.DEFINE_list("std_values", [], "Per input: uint8 steps per real unit.")
    flags.DEFINE_float("default_ranges_min", None, "Range min for arrays without a FakeQuant range.")
    flags.DEFINE_float("default_ranges_max", None, "Range max for arrays without a FakeQuant range.")
    flags.DEFINE_bool("change_concat_input_ranges", False, "Let concat inputs take the output range.")
    flags.DEFINE_bool("allow_custom_ops", False, "Keep ops TFLite does not know as custom ops.")
    flags.DEFINE_bool("ignore_weights_narrow_range", False,
                      "Quantize weights over all 256 levels, scale (max - min) / 255, whatever their FakeQuant's "
                      "narrow_range says: what TOCO did until mid-2018. Default: the FakeQuant's narrow_range.")
    flags.mark_flags_as_required(["input_arrays", "output_arrays"])


def _floats(flag: str) -> tuple[float, ...]:
    values = getattr(flags.FLAGS, flag)
    try:
        return tuple(float(value) for value in values)
    except ValueError:
        raise ConversionError(f"--{flag}={','.join(values)}: expected numbers") from None


def _shapes() -> tuple[tuple[int, ...], ...]:
    text = flags.FLAGS.input_shapes
    if text is None:
        return ()
    try:
        return tuple(tuple(int(dim) for dim in shape.split(",")) for shape in text.split(":"))
    except ValueError:
        raise ConversionError(f"--input_shapes={text}: expected comma-separated integers, ':' between arrays") from None


def from_flags() -> ConverterSettings:
    """The settings the flags of define_flags() give."""
    values = flags.FLAGS
    ranges = (values.default_ranges_min, values.default_ranges_max)
    if (ranges[0] is None) != (ranges[1] is None):
        raise ConversionError("--default_ranges_min and --default_ranges_max go together")
    return ConverterSettings(
        input_arrays=tuple(values.input_arrays),
        output_arrays=tuple(values.output_arrays),
        input_shapes=_shapes(),
        inference_type=values.inference_type,
        inference_input_type=values.inference_input_type,
        mean_values=_floats("mean_values"),
        std_values=_floats("std_values"),
        default_ranges=None if ranges[0] is None else ranges,
        change_concat_input_ranges=values.change_concat_input_ranges,
        allow_custom_ops=values.allow_custom_ops,
        ignore_weights_narrow_range=values.ignore_weights_narrow_range,
    )
