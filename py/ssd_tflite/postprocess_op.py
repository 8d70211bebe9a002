"""The `TFLite_Detection_PostProcess` custom op node and its attributes.

TFLite implements this op (box decoding with the anchors, per-class or fast
non-max suppression); TensorFlow does not, so the node is added to the
GraphDef directly. Its inputs are the raw box codes, the class scores and
the anchors const; its four outputs are boxes, classes, scores and count.

`_output_types` is left out on purpose: TF 2.21's quantized conversion hangs
on it, and TFLite infers the four float32 outputs without it.
"""

import tensorflow as tf

from ssd_tflite.model_spec import ModelSpec
from ssd_tflite.tflite_graph import ANCHORS, BOX_ENCODINGS, CLASS_PREDICTIONS, POSTPROCESS_OP, PostProcessingFlags


def attributes(spec: ModelSpec, flags: PostProcessingFlags) -> dict[str, object]:
    """Attribute values of the op: thresholds, classes and box scales from the config."""
    y_scale, x_scale, h_scale, w_scale = spec.box_coder_scales
    return {
        "max_detections": flags.max_detections,
        "max_classes_per_detection": flags.max_classes_per_detection,
        "detections_per_class": flags.detections_per_class,
        "use_regular_nms": flags.use_regular_nms,
        "nms_score_threshold": spec.nms_score_threshold,
        "nms_iou_threshold": spec.nms_iou_threshold,
        "num_classes": spec.num_classes,
        "y_scale": y_scale,
        "x_scale": x_scale,
        "h_scale": h_scale,
        "w_scale": w_scale,
        "_output_quantized": True,
    }


def add_to_graph_def(graph_def: tf.compat.v1.GraphDef, spec: ModelSpec, flags: PostProcessingFlags) -> None:
    """Appends the op node, fed by the raw outputs and anchors, to `graph_def`."""
    node = graph_def.node.add(name=POSTPROCESS_OP, op=POSTPROCESS_OP)
    node.input.extend([BOX_ENCODINGS, CLASS_PREDICTIONS, ANCHORS])
    for key, value in attributes(spec, flags).items():
        if isinstance(value, bool):
            node.attr[key].b = value
        elif isinstance(value, int):
            node.attr[key].i = value
        else:
            node.attr[key].f = value
