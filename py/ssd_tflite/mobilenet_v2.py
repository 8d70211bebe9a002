"""SSD MobileNet v2 and SSDLite (`ssd_mobilenet_v2`): its feature extractor and its `ARCHITECTURE`.

MobileNet v2: a 3x3 stride-2 convolution, 17 inverted-residual blocks
(`expanded_conv`, `expanded_conv_1` .. `expanded_conv_16`: 1x1 expand,
3x3 depthwise, linear 1x1 project, residual add when shapes allow) and the
1x1 `Conv_1`. SSD takes the expansion output of block 13 (stride 16) and
Conv_1 (stride 32) and adds four extra stride-2 maps, separable for SSDLite
(`use_depthwise`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssd_tflite.feature_maps import extra_feature_maps, mobilenet_architecture
from ssd_tflite.model_spec import FeatureExtractorSpec

if TYPE_CHECKING:  # types only: see `architecture`
    import tensorflow as tf

    from ssd_tflite.layers import LayerBuilder

TYPE = "ssd_mobilenet_v2"
SCOPE = "FeatureExtractor/MobilenetV2"
# (expansion factor, output channels, repeats, first stride) per stage.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
FEATURE_BLOCK = 13  # its expansion output is the first feature map
LAST_CONV_DEPTH = 1280


def make_divisible(value: float, divisor: int = 8, min_value: int = 8) -> int:
    """Rounds a channel count to a multiple of `divisor`, never 10% below `value`."""
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def extract_features(builder: LayerBuilder, images: tf.Tensor, spec: FeatureExtractorSpec) -> list[tf.Tensor]:
    """Feature maps at strides 16, 32, 64, 128, 256 and 512 (19..1 cells at 300x300)."""

    def depth(channels: float) -> int:
        return make_divisible(channels * spec.depth_multiplier, min_value=spec.min_depth)

    net = builder.conv(images, f"{SCOPE}/Conv", depth(32), 3, stride=2)
    feature_maps = []
    block = 0
    for expansion, channels, repeats, first_stride in STAGES:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            scope = f"{SCOPE}/expanded_conv" + (f"_{block}" if block else "")
            block_input = net
            in_channels = int(net.shape[-1])
            if expansion > 1:
                net = builder.conv(net, f"{scope}/expand", make_divisible(in_channels * expansion), 1)
                if block == FEATURE_BLOCK:
                    feature_maps.append(net)
            net = builder.conv(net, f"{scope}/depthwise", kernel=3, stride=stride, depthwise=True)
            net = builder.conv(net, f"{scope}/project", depth(channels), 1, activation=None)
            if stride == 1 and in_channels == int(net.shape[-1]):
                net = builder.residual(block_input, net, scope)
            block += 1
    net = builder.conv(net, f"{SCOPE}/Conv_1", depth(LAST_CONV_DEPTH), 1)
    feature_maps.append(net)
    return feature_maps + extra_feature_maps(builder, net, SCOPE, "layer_19", depth, spec.use_depthwise)


ARCHITECTURE = mobilenet_architecture(TYPE, extract_features)
