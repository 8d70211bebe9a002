"""The extra SSD feature maps stacked on top of a MobileNet backbone.

Each extra map is a 1x1 convolution to half the depth followed by a stride-2
3x3 convolution (separable for SSDLite), named after the backbone layer they
grow from, e.g. `Conv2d_13_pointwise_2_Conv2d_2_3x3_s2_512`.
"""

from typing import Callable

import tensorflow as tf

from ssd_tflite.layers import LayerBuilder

EXTRA_LAYER_DEPTHS = (512, 256, 256, 128)


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
