"""SSD MobileNet v1 (`ssd_mobilenet_v1`): its feature extractor and its `ARCHITECTURE`.

MobileNet v1: a 3x3 stride-2 convolution and 13 depthwise-separable blocks;
SSD takes Conv2d_11_pointwise (stride 16) and Conv2d_13_pointwise (stride 32)
and adds four extra stride-2 maps. Backbone variables live under
`FeatureExtractor/MobilenetV1/<layer>`, while the quantization variables of
the backbone live in the doubled op scope `FeatureExtractor/MobilenetV1/MobilenetV1/<layer>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssd_tflite.feature_maps import extra_feature_maps, mobilenet_architecture
from ssd_tflite.model_spec import FeatureExtractorSpec

if TYPE_CHECKING:  # types only: see `architecture`
    import tensorflow as tf

    from ssd_tflite.layers import LayerBuilder

TYPE = "ssd_mobilenet_v1"
SCOPE = "FeatureExtractor/MobilenetV1"
# (stride, depth) of the depthwise-separable blocks Conv2d_1 .. Conv2d_13.
SEPARABLE_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
                    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))
FEATURE_BLOCKS = (11, 13)  # Conv2d_11_pointwise and Conv2d_13_pointwise


def extract_features(builder: LayerBuilder, images: tf.Tensor, spec: FeatureExtractorSpec) -> list[tf.Tensor]:
    """Feature maps at strides 16, 32, 64, 128, 256 and 512 (19..1 cells at 300x300)."""

    def depth(channels: int) -> int:
        return max(int(channels * spec.depth_multiplier), spec.min_depth)

    op_scope = f"{SCOPE}/MobilenetV1"
    net = builder.conv(images, f"{SCOPE}/Conv2d_0", depth(32), 3, stride=2, quant_scope=f"{op_scope}/Conv2d_0")
    feature_maps = []
    for block, (stride, channels) in enumerate(SEPARABLE_BLOCKS, start=1):
        for layer, kwargs in ((f"Conv2d_{block}_depthwise", dict(kernel=3, stride=stride, depthwise=True)),
                              (f"Conv2d_{block}_pointwise", dict(filters=depth(channels)))):
            net = builder.conv(net, f"{SCOPE}/{layer}", quant_scope=f"{op_scope}/{layer}", **kwargs)
        if block in FEATURE_BLOCKS:
            feature_maps.append(net)
    return feature_maps + extra_feature_maps(builder, net, SCOPE, "Conv2d_13_pointwise", depth, spec.use_depthwise)


ARCHITECTURE = mobilenet_architecture(TYPE, extract_features)
