"""SSD ResNet50 v1 FPN (`ssd_resnet50_v1_fpn`, RetinaNet): its feature extractor and its `ARCHITECTURE`.

ResNet50 v1: a 7x7 stride-2 convolution, 3x3 stride-2 max pool and four
blocks of 3, 4, 6 and 3 bottleneck units. The last unit of blocks 1-3 runs at
stride 1 and its output, the block's feature map, is then subsampled by 2.
A feature pyramid is built top-down from blocks 2-4 (levels 3-5) with 1x1
projections, nearest-neighbour upsampling and 3x3 smoothing, and extended
bottom-up with stride-2 3x3 convolutions up to `max_level`. It is exported
with the weight-shared box predictor and multiscale anchors, one level each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf.message import Message

from ssd_tflite.architecture import (MULTISCALE_ANCHOR_GENERATOR, WEIGHT_SHARED_BOX_PREDICTOR, Architecture,
                                     PixelNormalization, Require)
from ssd_tflite.model_spec import FeatureExtractorSpec, MultiscaleAnchors

if TYPE_CHECKING:  # types only: see `architecture`
    import tensorflow as tf

    from ssd_tflite.layers import LayerBuilder

TYPE = "ssd_resnet50_v1_fpn"
SCOPE = "FeatureExtractor/resnet_v1_50"
# (bottleneck units, bottleneck depth) of block1 .. block4; output depth is 4x.
BLOCKS = ((3, 64), (4, 128), (6, 256), (3, 512))
# Block k has stride 2**(k+1): block1 .. block4 give pyramid levels 2 .. 5.
BACKBONE_MIN_LEVEL = 2
BACKBONE_MAX_LEVEL = 5


def _bottleneck(builder: LayerBuilder, inputs: tf.Tensor, scope: str, depth: int, bottleneck_depth: int) -> tf.Tensor:
    if int(inputs.shape[-1]) == depth:
        shortcut = inputs
    else:
        shortcut = builder.conv(inputs, f"{scope}/shortcut", depth, 1, activation=None)
    residual = builder.conv(inputs, f"{scope}/conv1", bottleneck_depth, 1, activation="RELU")
    residual = builder.conv(residual, f"{scope}/conv2", bottleneck_depth, 3, activation="RELU")
    residual = builder.conv(residual, f"{scope}/conv3", depth, 1, activation=None)
    return builder.residual(shortcut, residual, scope, activation="RELU")


def _backbone(builder: LayerBuilder, images: tf.Tensor) -> list[tf.Tensor]:
    """Outputs of block1 .. block4 (strides 4, 8, 16, 32)."""
    net = builder.conv(images, f"{SCOPE}/conv1", 64, 7, stride=2, activation="RELU", explicit_padding=True)
    net = builder.max_pool(net, 3, 2, f"{SCOPE}/pool1/MaxPool")
    block_outputs = []
    for index, (units, bottleneck_depth) in enumerate(BLOCKS, start=1):
        for unit in range(1, units + 1):
            net = _bottleneck(builder, net, f"{SCOPE}/block{index}/unit_{unit}/bottleneck_v1",
                              bottleneck_depth * 4, bottleneck_depth)
        block_outputs.append(net)
        if index < len(BLOCKS):
            net = builder.max_pool(net, 1, 2, f"{SCOPE}/block{index}/subsample")
    return block_outputs


def extract_features(builder: LayerBuilder, images: tf.Tensor, spec: FeatureExtractorSpec) -> list[tf.Tensor]:
    """Pyramid levels min_level .. max_level (80, 40, 20, 10, 5 cells at 640x640 for 3..7)."""
    depth = max(int(spec.fpn_depth * spec.depth_multiplier), spec.min_depth)
    block_outputs = _backbone(builder, images)
    inputs = block_outputs[spec.fpn_min_level - BACKBONE_MIN_LEVEL:]
    fpn = f"{SCOPE}/fpn"
    count = len(inputs)
    top_down = builder.conv(inputs[-1], f"{fpn}/projection_{count}", depth, 1, batch_norm=None, activation=None)
    levels = [top_down]
    for index in reversed(range(count - 1)):
        height, width = (int(size) for size in inputs[index].shape[1:3])
        upsampled = builder.upsample(top_down, (height, width), f"{fpn}/top_down/upsample_{index + 1}")
        lateral = builder.conv(inputs[index], f"{fpn}/projection_{index + 1}", depth, 1, batch_norm=None,
                               activation=None)
        top_down = builder.add(upsampled, lateral, f"{fpn}/top_down/add_{index + 1}")
        levels.insert(0, builder.conv(top_down, f"{fpn}/smoothing_{index + 1}", depth, 3))
    net = levels[-1]
    for level in range(BACKBONE_MAX_LEVEL + 1, spec.fpn_max_level + 1):
        # The layer making level L is named after L - 1 (bottom_up_block5 makes level 6).
        net = builder.conv(net, f"{fpn}/bottom_up_block{level - 1}", depth, 3, stride=2)
        levels.append(net)
    return levels


def check_feature_extractor(extractor: Message, require: Require) -> None:
    """The pyramid needs an fpn block that starts at a level the backbone has and reaches its last."""
    require(extractor.HasField("fpn"), "model.ssd.feature_extractor.fpn", None,
            f"{TYPE} needs an fpn block with min_level and max_level")
    levels = (extractor.fpn.min_level, extractor.fpn.max_level)
    require(BACKBONE_MIN_LEVEL <= levels[0] <= BACKBONE_MAX_LEVEL <= levels[1], "model.ssd.feature_extractor.fpn",
            levels, f"ResNet50 blocks give levels {BACKBONE_MIN_LEVEL}..{BACKBONE_MAX_LEVEL}, so min_level must be "
            f"{BACKBONE_MIN_LEVEL}..{BACKBONE_MAX_LEVEL} and max_level at least {BACKBONE_MAX_LEVEL}")


def check_anchors(extractor: Message, anchors: MultiscaleAnchors, require: Require) -> None:
    """One anchor level per pyramid level."""
    levels = (anchors.min_level, anchors.max_level)
    pyramid = (extractor.fpn.min_level, extractor.fpn.max_level)
    require(levels == pyramid, "model.ssd.anchor_generator.multiscale_anchor_generator", levels,
            f"its min_level and max_level must be the FPN's, {pyramid}")


ARCHITECTURE = Architecture(
    types=(TYPE,),
    extract_features=extract_features,
    input_normalization=PixelNormalization((123.68, 116.779, 103.939), (1.0,) * 3),  # pixel - ImageNet mean
    box_predictor=WEIGHT_SHARED_BOX_PREDICTOR,
    anchor_generator=MULTISCALE_ANCHOR_GENERATOR,
    check_anchors=check_anchors,
    # Not supported: export the float checkpoint with calibration_images for a uint8 model instead.
    quantization_aware=False,
    check_feature_extractor=check_feature_extractor,
)
