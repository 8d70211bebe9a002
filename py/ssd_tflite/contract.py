"""The model contract: what a produced `.tflite` takes and gives, checked against its config and itself.

The model_contract tool (the ssd_tflite_model rule's SsdModelContract action)
writes it beside the model as `<name>_contract.json`, with the class names as
`<name>_labels.txt`: the input's name, shape, type and normalization, the
outputs, and where the model comes from. `check` refuses converter settings
that the pipeline.config contradicts: every check that needs the config is
here, the others are ConverterSettings'. `check_model` refuses a converted
model that is not what its contract says, so that the contract and the
embedded metadata made from it describe what the converter produced.
"""

import dataclasses
import json
import math
from typing import Optional, Sequence

from ai_edge_litert import schema_py_generated as schema

from ssd_tflite import architecture, flatbuffer_model, preprocessing
from ssd_tflite.converter_settings import ConverterSettings
from ssd_tflite.errors import ConfigError, ConversionError, InputError
from ssd_tflite.model_spec import ModelSpec
from ssd_tflite.tflite_graph import INPUT_NAME, OUTPUT_ARRAYS, PostProcessingFlags

# The files the ssd_tflite_model rule writes beside `<name>.tflite` (tools/private/constants.bzl).
CONTRACT_SUFFIX = "_contract.json"
LABELS_SUFFIX = "_labels.txt"

OUTPUT_DESCRIPTIONS = ("boxes [1, max_detections, 4] (ymin, xmin, ymax, xmax), normalized",
                       "classes [1, max_detections], index into the labels file",
                       "scores [1, max_detections]",
                       "count [1], valid detections")
INPUT_DTYPES = {"FLOAT": "float32", "QUANTIZED_UINT8": "uint8"}  # by the input's inference type
# A uint8 input's std is stored as a float32 scale, 1 / std.
_SCALE_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class Export:
    """How the converted graph was exported (the rule's SsdTfliteGraphInfo)."""
    postprocessing: PostProcessingFlags
    embed_input_normalization: bool  # the graph takes (pixel - 128) / 128
    calibrated: bool  # the export measured activation ranges on images


def input_shape(spec: ModelSpec, settings: ConverterSettings) -> tuple[int, ...]:
    """The model's input shape: the converter's --input_shapes, else the graph's, from the config."""
    return settings.input_shapes[0] if settings.input_shapes else (1, spec.height, spec.width, 3)


def check(spec: ModelSpec, settings: ConverterSettings, export: Export, inference_type_stated: bool) -> None:
    """Refuses converter settings that the config contradicts, naming the setting and the fix.

    `inference_type_stated`: the build states the inference type rather than taking the default.
    """
    if settings.input_arrays != (INPUT_NAME,) or settings.output_arrays != OUTPUT_ARRAYS:
        raise ConversionError(f"--input_arrays={','.join(settings.input_arrays)} --output_arrays="
                              f"{','.join(settings.output_arrays)}: the exported graph's are {INPUT_NAME} and "
                              f"{','.join(OUTPUT_ARRAYS)}, which the contract describes")
    shape = input_shape(spec, settings)
    if shape != (1, spec.height, spec.width, 3):
        raise ConfigError(f"input_shape {list(shape)} does not match the config's fixed_shape_resizer "
                          f"{spec.height}x{spec.width}: the graph is built for [1, {spec.height}, {spec.width}, 3]")
    if not inference_type_stated and spec.quantized:
        raise ConfigError("the config is quantization-aware (graph_rewriter.quantization) but the build does not "
                          "state inference_type: set QUANTIZED_UINT8 for TOCO's uint8 model, or FLOAT to keep it float")
    inference_type = settings.inference_type
    if export.calibrated and (spec.quantized or inference_type != "QUANTIZED_UINT8"):
        raise ConfigError("calibration_images measure activation ranges for a QUANTIZED_UINT8 build of a float "
                          f"checkpoint; this build is {inference_type} of a "
                          f"{'quantization-aware' if spec.quantized else 'float'} checkpoint")
    if (inference_type == "QUANTIZED_UINT8" and not (spec.quantized or export.calibrated)
            and settings.default_ranges is None):
        raise ConfigError("a QUANTIZED_UINT8 build of a float checkpoint needs activation ranges: "
                          "give calibration_images (measured ranges) or default_ranges (TOCO's fallback)")
    graph_input = preprocessing.graph_input(spec.feature_extractor.type, export.embed_input_normalization)
    if settings.input_type == "QUANTIZED_UINT8" and len(set(graph_input.mean)) > 1:
        raise ConfigError(
            f"{spec.feature_extractor.type} takes (pixel - {list(graph_input.mean)}) / {list(graph_input.std)} "
            "per channel, which a uint8 input's single mean/std cannot express; "
            "set embed_input_normalization so the graph takes (pixel - 128) / 128")


def _activation_ranges(spec: ModelSpec, settings: ConverterSettings, export: Export) -> Optional[str]:
    """Where a uint8 model's activation ranges come from; None for float models."""
    if settings.inference_type != "QUANTIZED_UINT8":
        return None
    if spec.quantized:
        return "checkpoint (quantization-aware training)"
    if export.calibrated:
        return "calibrated on images"
    return f"default {settings.default_ranges[0]:g}..{settings.default_ranges[1]:g}"


def describe(spec: ModelSpec, settings: ConverterSettings, export: Export, synthetic: bool) -> dict:
    """The contract of the model that `settings` make of the graph: JSON-ready, for apps and tools such as `detect`.

    `synthetic`: built from a synthesized checkpoint, whose random weights detect nothing meaningful.
    """
    quantized_input = settings.input_type == "QUANTIZED_UINT8"
    if quantized_input:
        # uint8 pixels go in as they are; the model reads them as (q - mean) / std.
        normalization = architecture.PixelNormalization((settings.mean_values[0],) * 3, (settings.std_values[0],) * 3)
    else:
        normalization = preprocessing.graph_input(spec.feature_extractor.type, export.embed_input_normalization)
    return {
        "feature_extractor": spec.feature_extractor.type,
        "num_classes": spec.num_classes,
        "synthetic": synthetic,
        "quantization_aware_checkpoint": spec.quantized,
        "inference_type": settings.inference_type,
        "activation_ranges": _activation_ranges(spec, settings, export),
        "input": {
            "name": INPUT_NAME,
            "shape": list(input_shape(spec, settings)),
            "dtype": INPUT_DTYPES[settings.input_type],
            # Float input: feed (pixel - mean) / std per RGB channel, pixels in 0..255.
            # uint8 input: feed pixels; the model reads them as (q - mean) / std.
            "mean": list(normalization.mean),
            "std": list(normalization.std),
            "embedded_normalization": export.embed_input_normalization,
        },
        "outputs": [{"name": name, "description": description}
                    for name, description in zip(OUTPUT_ARRAYS, OUTPUT_DESCRIPTIONS)],
        "postprocessing": dataclasses.asdict(export.postprocessing),
    }


def labels(spec: ModelSpec, names: Optional[list[str]], labels_path: str) -> str:
    """The labels file: the given names (checked to be one per class) or class_1..class_N."""
    if names is None:
        names = [f"class_{index}" for index in range(1, spec.num_classes + 1)]
    elif len(names) != spec.num_classes:
        raise ConfigError(f"{labels_path}: {len(names)} labels for num_classes {spec.num_classes}; "
                          "give one line per class, in class-id order, without a background line")
    return "".join(name + "\n" for name in names)


def contract_json(contract: dict) -> str:
    return json.dumps(contract, indent=2, sort_keys=True) + "\n"


def read(path: str) -> dict:
    """The contract in the file at `path`: a JSON object with an `input` object; InputError otherwise."""
    try:
        with open(path) as contract_file:
            contract = json.load(contract_file)
    except OSError as error:
        raise InputError(f"{path}: cannot read the model contract: {error.strerror}") from None
    except ValueError as error:  # also UnicodeDecodeError
        raise InputError(f"{path}: not a model contract (JSON): {error}") from None
    except RecursionError:
        raise InputError(f"{path}: not a model contract: nested too deeply") from None
    if not isinstance(contract, dict) or not isinstance(contract.get("input"), dict):
        raise InputError(f"{path}: not a model contract: it has no `input` object")
    return contract


def normalization(contract: dict, path: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The contract's input (mean, std) per RGB channel, checked (InputError naming `path`)."""
    return architecture.checked_normalization(contract["input"].get("mean"), contract["input"].get("std"),
                                                 f"{path}: input")


def _names(subgraph: schema.SubGraphT, tensors: Sequence[int]) -> list[str]:
    return [flatbuffer_model.tensor_name(subgraph.tensors[index]) for index in tensors]


def check_model(contract: dict, contract_path: str, model: schema.ModelT, model_path: str) -> None:
    """Refuses a model whose input and outputs are not the ones its contract describes."""
    _, _, image_type = flatbuffer_model.image_input(model, model_path)  # one image input, four outputs
    subgraph = model.subgraphs[0]
    tensor = subgraph.tensors[subgraph.inputs[0]]
    described = contract["input"]
    found = {"name": flatbuffer_model.tensor_name(tensor), "shape": [int(dim) for dim in tensor.shape],
             "dtype": image_type.__name__}
    mismatches = [f"its input {key} is {found[key]!r}, the contract's {described.get(key)!r}"
                  for key in ("name", "shape", "dtype") if found[key] != described.get(key)]
    outputs = _names(subgraph, subgraph.outputs)
    described_outputs = contract.get("outputs")
    if isinstance(described_outputs, list):
        described_outputs = [output.get("name") if isinstance(output, dict) else output for output in described_outputs]
    if outputs != described_outputs:
        mismatches.append(f"its outputs are {outputs}, the contract's {described_outputs}")
    not_float = [name for name, index in zip(outputs, subgraph.outputs)
                 if subgraph.tensors[index].type != schema.TensorType.FLOAT32]
    if not_float:
        mismatches.append(f"its outputs {not_float} are not float32")
    if not mismatches and found["dtype"] == "uint8":
        mean, std = normalization(contract, contract_path)
        quantization = flatbuffer_model.quantization(tensor)
        if quantization is None:
            mismatches.append(f"its uint8 input has no quantization, the contract's is (q - {mean[0]:g}) / {std[0]:g}")
        elif any(quantization.zero_point != channel_mean or
                 not math.isclose(quantization.scale * channel_std, 1.0, rel_tol=_SCALE_TOLERANCE)
                 for channel_mean, channel_std in zip(mean, std)):
            stored = f"(q - {quantization.zero_point}) / {1 / quantization.scale:g} in every channel"
            mismatches.append(f"its uint8 input is read as {stored}, the contract's as (q - {list(mean)}) / "
                              f"{list(std)}")
    if mismatches:
        raise InputError(f"{model_path} is not the model its contract {contract_path} describes: "
                         f"{'; '.join(mismatches)}. The converter did not do what the settings asked: a plugged "
                         "converter or a converter flag changed the model's interface")
