"""The input/output contract of a produced `.tflite`, derived from its config and settings.

It checks the converter settings the build chose against the config (input
shape, FLOAT or QUANTIZED_UINT8, uint8 input normalization) and describes the
model for its users: input name, shape, type and normalization, outputs, labels.
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
    """What the build asks of the converter; None or empty means "not stated": the graph's shape, and
    QUANTIZED_UINT8 for calibrated graphs, else FLOAT."""
    inference_type: Optional[str] = None
    input_shape: tuple[int, ...] = ()
    mean_value: float = 128.0
    std_value: float = 128.0
    default_ranges: Optional[tuple[float, float]] = None
    embed_input_normalization: bool = False
    calibrated: bool = False  # the export measured activation ranges on images


def resolve(spec: ModelSpec, settings: ConverterSettings) -> ConverterSettings:
    """Fills in the inference type and input shape, checking them and the uint8 input against the config."""
    shape = settings.input_shape or (1, spec.height, spec.width, 3)
    if shape != (1, spec.height, spec.width, 3):
        raise ConfigError(f"input_shape {list(shape)} does not match the config's fixed_shape_resizer "
                          f"{spec.height}x{spec.width}: the graph is built for [1, {spec.height}, {spec.width}, 3]")
    if not settings.inference_type and spec.quantized:
        raise ConfigError("the config is quantization-aware (graph_rewriter.quantization) but the build does not "
                          "state inference_type: set QUANTIZED_UINT8 for TOCO's uint8 model, or FLOAT to keep it float")
    inference_type = settings.inference_type or ("QUANTIZED_UINT8" if settings.calibrated else "FLOAT")
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
