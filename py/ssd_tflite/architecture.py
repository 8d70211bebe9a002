"""What an SSD architecture declares: everything the pipeline needs to know about it.

Each architecture module (mobilenet_v1, mobilenet_v2, resnet_v1_fpn) builds its
network and declares it in one `ARCHITECTURE`; `architectures` maps each
`model.ssd.feature_extractor.type` to one of them. `pipeline_config` checks a
config against the declaration, `export` builds with its `extract_features`,
and `preprocessing` takes its input normalization.

Declarations are read with every config, also by tools that never build a
graph, so this module and the architecture modules import no TensorFlow: the
builders reach it through the `LayerBuilder` they are handed, and name its
types only for type checkers.
"""

import dataclasses
import math
from typing import TYPE_CHECKING, Callable

from google.protobuf.message import Message

from ssd_tflite.errors import InputError
from ssd_tflite.model_spec import FeatureExtractorSpec, MultiscaleAnchors, SsdAnchors

if TYPE_CHECKING:
    import tensorflow as tf

    from ssd_tflite.layers import LayerBuilder

# The box predictors and anchor generators an architecture can be exported with, by their config names.
CONVOLUTIONAL_BOX_PREDICTOR = "convolutional_box_predictor"
WEIGHT_SHARED_BOX_PREDICTOR = "weight_shared_convolutional_box_predictor"
SSD_ANCHOR_GENERATOR = "ssd_anchor_generator"
MULTISCALE_ANCHOR_GENERATOR = "multiscale_anchor_generator"
ANCHOR_GENERATORS = (SSD_ANCHOR_GENERATOR, MULTISCALE_ANCHOR_GENERATOR)


@dataclasses.dataclass(frozen=True)
class PixelNormalization:
    """Input = (pixel - mean) / std, per RGB channel."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def checked_normalization(mean: object, std: object, source: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of an RGB input as three finite numbers each, std positive; InputError naming `source`."""
    values = []
    for name, given in (("mean", mean), ("std", std)):
        if not isinstance(given, (list, tuple)) or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) for value in given):
            raise InputError(f"{source}: {name} is {given!r}, not a list of 3 numbers (one per RGB channel)")
        numbers = tuple(float(value) for value in given)
        if len(numbers) != 3 or not all(math.isfinite(number) for number in numbers):
            raise InputError(f"{source}: {name} is {list(numbers)}, not 3 finite numbers (one per RGB channel)")
        values.append(numbers)
    if not all(number > 0 for number in values[1]):
        raise InputError(f"{source}: std is {list(values[1])}: every channel's std must be positive (pixels are "
                         "divided by it)")
    return values[0], values[1]


# The MobileNets' input: (2 / 255) * pixel - 1, i.e. [-1, 1].
MINUS_ONE_TO_ONE = PixelNormalization((127.5,) * 3, (127.5,) * 3)
# (pixel - 128) / 128: what TOCO's --mean_values=128 --std_values=128 make of a uint8 input, the classic
# recipe's input for every model (and the graph's, with embed_input_normalization).
TOCO_INPUT = PixelNormalization((128.0,) * 3, (128.0,) * 3)

# require(condition, field path, value, why): unless `condition`, refuses the config (a ConfigError naming the
# config file, the field and its value, and saying why).
Require = Callable[[bool, str, object, str], None]
# (the config's model.ssd.feature_extractor, require)
FeatureExtractorCheck = Callable[[Message, Require], None]
# (the config's model.ssd.feature_extractor, the anchors read from the config, require)
AnchorsCheck = Callable[[Message, SsdAnchors | MultiscaleAnchors, Require], None]
# (layer builder, the input images [1, H, W, 3], the extractor's settings) -> its feature maps, finest first.
FeatureExtractor = Callable[["LayerBuilder", "tf.Tensor", FeatureExtractorSpec], list["tf.Tensor"]]


def no_checks(extractor: Message, require: Require) -> None:
    """The `check_feature_extractor` of an architecture that refuses none of the extractor's fields."""


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One SSD architecture, as its module declares it."""
    # The model.ssd.feature_extractor.type values that select it.
    types: tuple[str, ...]
    # Builds the backbone and the feature maps the box predictor reads.
    extract_features: FeatureExtractor
    # What the feature extractor expects of 0..255 pixels.
    input_normalization: PixelNormalization
    # The model.ssd.box_predictor and model.ssd.anchor_generator it is exported with.
    box_predictor: str
    anchor_generator: str
    # Refuses anchors that do not describe the feature maps `extract_features` yields for this extractor.
    check_anchors: AnchorsCheck
    # Whether its quantization-aware checkpoints (graph_rewriter.quantization) can be exported.
    quantization_aware: bool
    # Refuses feature_extractor fields it cannot build (the common ones are checked for every architecture).
    check_feature_extractor: FeatureExtractorCheck = no_checks
