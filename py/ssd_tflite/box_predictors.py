"""SSD box predictors: per-feature-map heads that emit box codes and class logits.

`convolutional_box_predictor` gives each feature map its own pair of heads
(`BoxPredictor_<k>/BoxEncodingPredictor` and `.../ClassPredictor`), separable
for SSDLite. `weight_shared_convolutional_box_predictor` (RetinaNet) runs the
same towers and heads on every level, with batch norm kept per level.
Outputs are [1, anchors, 4] box codes and [1, anchors, num_classes + 1] logits.
"""

from typing import Sequence

import tensorflow as tf

from ssd_tflite.errors import InternalError
from ssd_tflite.layers import LayerBuilder
from ssd_tflite.model_spec import ModelSpec

BOX_CODE_SIZE = 4
WEIGHT_SHARED_SCOPE = "WeightSharedConvolutionalBoxPredictor"


def _flatten(tensor: tf.Tensor, width: int, name: str) -> tf.Tensor:
    """[1, H, W, A * width] -> [1, H * W * A, width], cell-major then anchor."""
    return tf.reshape(tensor, [1, -1, width], name=name)


def _convolutional_heads(builder: LayerBuilder, feature_maps: Sequence[tf.Tensor], spec: ModelSpec):
    predictor = spec.box_predictor
    boxes, classes = [], []
    for index, (feature_map, anchors) in enumerate(zip(feature_maps, spec.num_anchors_per_location)):
        outputs = []
        for head, width in (("BoxEncodingPredictor", BOX_CODE_SIZE), ("ClassPredictor", spec.num_classes + 1)):
            scope = f"BoxPredictor_{index}/{head}"
            net, kernel = feature_map, predictor.kernel_size
            if predictor.use_depthwise:
                net = builder.conv(net, scope + "_depthwise", kernel=kernel, depthwise=True)
                kernel = 1
            net = builder.conv(net, scope, anchors * width, kernel, batch_norm=None, activation=None)
            outputs.append(_flatten(net, width, f"BoxPredictor_{index}/{head}/Reshape"))
        boxes.append(outputs[0])
        classes.append(outputs[1])
    return boxes, classes


def _weight_shared_heads(builder: LayerBuilder, feature_maps: Sequence[tf.Tensor], spec: ModelSpec):
    predictor = spec.box_predictor
    boxes, classes = [], []
    for level, (feature_map, anchors) in enumerate(zip(feature_maps, spec.num_anchors_per_location)):
        outputs = []
        for tower, head, width in (("BoxPredictionTower", "BoxPredictor", BOX_CODE_SIZE),
                                   ("ClassPredictionTower", "ClassPredictor", spec.num_classes + 1)):
            net = feature_map
            for layer in range(predictor.num_layers_before_predictor):
                net = builder.conv(net, f"{WEIGHT_SHARED_SCOPE}/{tower}/conv2d_{layer}", predictor.depth,
                                   predictor.kernel_size, batch_norm=f"BatchNorm/feature_{level}")
            net = builder.conv(net, f"{WEIGHT_SHARED_SCOPE}/{head}", anchors * width, predictor.kernel_size,
                               batch_norm=None, activation=None)
            outputs.append(_flatten(net, width, f"{WEIGHT_SHARED_SCOPE}_{level}/{head}/Reshape"))
        boxes.append(outputs[0])
        classes.append(outputs[1])
    return boxes, classes


def predict(builder: LayerBuilder, feature_maps: Sequence[tf.Tensor], spec: ModelSpec) -> tuple[tf.Tensor, tf.Tensor]:
    """Box codes [1, N, 4] and class logits [1, N, num_classes + 1] over all feature maps."""
    if len(feature_maps) != len(spec.num_anchors_per_location):
        raise InternalError(f"the anchor generator describes {len(spec.num_anchors_per_location)} feature maps "
                            f"but the feature extractor yields {len(feature_maps)}")
    heads = _weight_shared_heads if spec.box_predictor.weight_shared else _convolutional_heads
    boxes, classes = heads(builder, feature_maps, spec)
    return tf.concat(boxes, axis=1, name="concat"), tf.concat(classes, axis=1, name="concat_1")
