"""The input/output contract of a produced `.tflite`, derived from its config and settings.

It decides what the config leaves to the build (input shape, FLOAT or
QUANTIZED_UINT8), writes the converter's flags, and describes the model for
its users: input name, shape, type and normalization, outputs, labels.
"""

import dataclasses
import json
from typing import Optional

from ssd_tflite import preprocessing
from ssd_tflite.errors import ConfigError
from ssd_tflite.graph_contract import INPUT_NAME, OUTPUT_ARRAYS, PostProcessingFlags
from ssd_tflite.pipeline_config import ModelSpec

OUTPUT_DESCRIPTIONS = ("boxes [1, max_detections, 4] (ymin, xmin, ymax, xmax), normalized",
                       "classes [1, max_detections], index into the labels file",
                       "scores [1, max_detections]",
                       "count [1], valid detections")


@dataclasses.dataclass(frozen=True)
class ConverterSettings:
    """What the build asks of the converter; None or empty means "from the config"."""
    inference_type: Optional[str] = None
    input_shape: tuple[int, ...] = ()
    mean_value: float = 128.0
    std_value: float = 128.0
    default_ranges: Optional[tuple[float, float]] = None
    change_concat_input_ranges: bool = False
    allow_custom_ops: bool = True
    embed_input_normalization: bool = False
    calibrated: bool = False  # the export measured activation ranges on images


def resolve(spec: ModelSpec, settings: ConverterSettings) -> ConverterSettings:
    """Fills in the inference type and input shape from the config, and checks the input can be uint8."""
    shape = settings.input_shape or (1, spec.height, spec.width, 3)
    if shape != (1, spec.height, spec.width, 3):
        raise ConfigError(f"input_shape {list(shape)} does not match the config's fixed_shape_resizer "
                          f"{spec.height}x{spec.width}: the graph is built for [1, {spec.height}, {spec.width}, 3]")
    inference_type = settings.inference_type or ("QUANTIZED_UINT8" if spec.quantized or settings.calibrated else "FLOAT")
    if settings.calibrated and (spec.quantized or inference_type != "QUANTIZED_UINT8"):
        raise ConfigError("calibration_images measure activation ranges for a QUANTIZED_UINT8 build of a float "
                          f"checkpoint; this build is {inference_type} of a "
                          f"{'quantization-aware' if spec.quantized else 'float'} checkpoint")
    if (inference_type == "QUANTIZED_UINT8" and not (spec.quantized or settings.calibrated)
            and settings.default_ranges is None):
        raise ConfigError("a QUANTIZED_UINT8 build of a float checkpoint needs activation ranges: "
                          "give calibration_images (measured ranges) or default_ranges (TOCO's fallback)")
    graph_input = preprocessing.graph_input(spec.feature_extractor.type, settings.embed_input_normalization)
    if inference_type == "QUANTIZED_UINT8" and len(set(graph_input.mean)) > 1:
        raise ConfigError(
            f"{spec.feature_extractor.type} takes (pixel - {list(graph_input.mean)}) / {list(graph_input.std)} "
            "per channel, which a uint8 input's single mean/std cannot express; "
            "set embed_input_normalization so the graph takes (pixel - 128) / 128")
    return dataclasses.replace(settings, inference_type=inference_type, input_shape=shape)


def converter_flags(settings: ConverterSettings) -> list[str]:
    """TOCO command-line flags (without input and output files) for resolved settings."""
    flags = [
        "--input_format=TENSORFLOW_GRAPHDEF",
        "--output_format=TFLITE",
        "--input_shapes=" + ",".join(str(dim) for dim in settings.input_shape),
        "--input_arrays=" + INPUT_NAME,
        "--output_arrays=" + ",".join(OUTPUT_ARRAYS),
        "--inference_type=" + settings.inference_type,
    ]
    if settings.inference_type == "QUANTIZED_UINT8":
        flags += [f"--mean_values={settings.mean_value:g}", f"--std_values={settings.std_value:g}"]
    if settings.default_ranges is not None:
        flags += [f"--default_ranges_min={settings.default_ranges[0]:g}",
                  f"--default_ranges_max={settings.default_ranges[1]:g}"]
    if settings.change_concat_input_ranges:
        flags.append("--change_concat_input_ranges")
    if settings.allow_custom_ops:
        flags.append("--allow_custom_ops")
    return flags


def _activation_ranges(spec: ModelSpec, settings: ConverterSettings) -> Optional[str]:
    """Where a uint8 model's activation ranges come from; None for float models."""
    if settings.inference_type != "QUANTIZED_UINT8":
        return None
    if spec.quantized:
        return "checkpoint (quantization-aware training)"
    if settings.calibrated:
        return "calibrated on images"
    return f"default {settings.default_ranges[0]:g}..{settings.default_ranges[1]:g}"


def metadata(spec: ModelSpec, settings: ConverterSettings, postprocessing: PostProcessingFlags,
             synthetic: bool) -> dict:
    """A JSON-ready description of the model for apps and tools such as `detect`.

    `synthetic`: built from a synthesized checkpoint, whose random weights detect nothing meaningful.
    """
    quantized_input = settings.inference_type == "QUANTIZED_UINT8"
    if quantized_input:
        # uint8 pixels go in as they are; the model reads them as (q - mean) / std.
        normalization = preprocessing.PixelNormalization((settings.mean_value,) * 3, (settings.std_value,) * 3)
    else:
        normalization = preprocessing.graph_input(spec.feature_extractor.type, settings.embed_input_normalization)
    return {
        "feature_extractor": spec.feature_extractor.type,
        "num_classes": spec.num_classes,
        "synthetic": synthetic,
        "quantization_aware_checkpoint": spec.quantized,
        "inference_type": settings.inference_type,
        "activation_ranges": _activation_ranges(spec, settings),
        "input": {
            "name": INPUT_NAME,
            "shape": list(settings.input_shape),
            "dtype": "uint8" if quantized_input else "float32",
            # Float input: feed (pixel - mean) / std per RGB channel, pixels in 0..255.
            # uint8 input: feed pixels; the model reads them as (q - mean) / std.
            "mean": list(normalization.mean),
            "std": list(normalization.std),
            "embedded_normalization": settings.embed_input_normalization,
        },
        "outputs": [{"name": name, "description": description}
                    for name, description in zip(OUTPUT_ARRAYS, OUTPUT_DESCRIPTIONS)],
        "postprocessing": dataclasses.asdict(postprocessing),
    }


def labels(spec: ModelSpec, names: Optional[list[str]], labels_path: str) -> str:
    """The labels file: the given names (checked to be one per class) or class_1..class_N."""
    if names is None:
        names = [f"class_{index}" for index in range(1, spec.num_classes + 1)]
    elif len(names) != spec.num_classes:
        raise ConfigError(f"{labels_path}: {len(names)} labels for num_classes {spec.num_classes}; "
                          "give one line per class, in class-id order, without a background line")
    return "".join(name + "\n" for name in names)


def metadata_json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
