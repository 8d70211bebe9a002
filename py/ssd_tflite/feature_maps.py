"""The extra SSD feature maps stacked on top of a MobileNet backbone, and the anchors they need.

Each extra map is a 1x1 convolution to half the depth followed by a stride-2
3x3 convolution (separable for SSDLite), named after the backbone layer they
grow from, e.g. `Conv2d_13_pointwise_2_Conv2d_2_3x3_s2_512`. Both MobileNets
yield six maps, so their configs need six ssd_anchor_generator layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from google.protobuf.message import Message

from ssd_tflite.architecture import (CONVOLUTIONAL_BOX_PREDICTOR, MINUS_ONE_TO_ONE, SSD_ANCHOR_GENERATOR, Architecture,
                                     FeatureExtractor, Require)
from ssd_tflite.model_spec import SsdAnchors

if TYPE_CHECKING:  # types only: see `architecture`
    import tensorflow as tf

    from ssd_tflite.layers import LayerBuilder

EXTRA_LAYER_DEPTHS = (512, 256, 256, 128)
# Two maps from the backbone (strides 16 and 32), then one per extra layer.
FEATURE_MAP_COUNT = 2 + len(EXTRA_LAYER_DEPTHS)


def extra_feature_maps(builder: LayerBuilder, inputs: tf.Tensor, scope: str, base_layer: str,
                       depth: Callable[[int], int], use_depthwise: bool) -> list[tf.Tensor]:
    """Appends the four stride-2 feature maps after `base_layer`."""
    feature_maps = []
    net = inputs
    for index, layer_depth in enumerate(EXTRA_LAYER_DEPTHS, start=2):
        net = builder.conv(net, f"{scope}/{base_layer}_1_Conv2d_{index}_1x1_{depth(layer_depth // 2)}",
                           depth(layer_depth // 2), 1)
        name = f"{scope}/{base_layer}_2_Conv2d_{index}_3x3_s2_{depth(layer_depth)}"
        if use_depthwise:
            net = builder.conv(net, name + "_depthwise", kernel=3, stride=2, depthwise=True)
            net = builder.conv(net, name, depth(layer_depth), 1)
        else:
            net = builder.conv(net, name, depth(layer_depth), 3, stride=2)
        feature_maps.append(net)
    return feature_maps


def check_anchor_layers(extractor: Message, anchors: SsdAnchors, require: Require) -> None:
    """A MobileNet SSD's `check_anchors`: one ssd_anchor_generator layer per feature map."""
    require(anchors.num_layers == FEATURE_MAP_COUNT, "model.ssd.anchor_generator.ssd_anchor_generator.num_layers",
            anchors.num_layers, f"{extractor.type} yields {FEATURE_MAP_COUNT} feature maps, one anchor layer each")


def mobilenet_architecture(type_name: str, extract_features: FeatureExtractor) -> Architecture:
    """An SSD MobileNet: [-1, 1] input, convolutional box predictor, six ssd_anchor_generator layers,
    quantization-aware training supported; only the backbone (`extract_features`) differs."""
    return Architecture(
        types=(type_name,),
        extract_features=extract_features,
        input_normalization=MINUS_ONE_TO_ONE,
        box_predictor=CONVOLUTIONAL_BOX_PREDICTOR,
        anchor_generator=SSD_ANCHOR_GENERATOR,
        check_anchors=check_anchor_layers,
        quantization_aware=True,
    )
