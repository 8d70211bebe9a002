"""Our own protobuf schema for the parts of `pipeline.config` the export reads.

Field names, types and defaults follow the text format of the TensorFlow
Object Detection API's `TrainEvalPipelineConfig`. Only fields this project
uses are declared; text_format is told to skip the rest. A few unsupported
alternatives (`faster_rcnn`, other anchor generators, ...) are declared as
empty messages so that a config using them is recognised and refused by name.

`RANGES` gives the valid values of every numeric field, the one table
`pipeline_config` checks them against: finite always; positive where the math
divides by a value, takes its root or sizes an array with it; probabilities
and overlaps in [0, 1]; ordered pairs ordered; and bounds that keep arrays,
anchors and decoded boxes finite and in memory, set far beyond the zoo's values.
"""

import dataclasses
import math
import struct
from typing import Any, Optional

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    "bool": _FIELD.TYPE_BOOL,
    "float": _FIELD.TYPE_FLOAT,
    "int32": _FIELD.TYPE_INT32,
    "string": _FIELD.TYPE_STRING,
}
_PACKAGE = "rules_ssd_tflite.pipeline"

# message name -> [(field name, type, default or None, repeated)].
# A type that is not a scalar names another message (or an enum below).
_MESSAGES: dict[str, list[tuple[str, str, Any, bool]]] = {
    "TrainEvalPipelineConfig": [
        ("model", "DetectionModel", None, False),
        ("eval_config", "EvalConfig", None, False),
        ("graph_rewriter", "GraphRewriter", None, False),
    ],
    "EvalConfig": [("use_moving_averages", "bool", "false", False)],
    "GraphRewriter": [("quantization", "Quantization", None, False)],
    "Quantization": [
        ("delay", "int32", "500000", False),
        ("weight_bits", "int32", "8", False),
        ("activation_bits", "int32", "8", False),
        ("symmetric", "bool", "false", False),
    ],
    "DetectionModel": [
        ("ssd", "Ssd", None, False),
        ("faster_rcnn", "Unsupported", None, False),
        ("center_net", "Unsupported", None, False),
        ("experimental_model", "Unsupported", None, False),
    ],
    "Unsupported": [],
    "Ssd": [
        ("num_classes", "int32", None, False),
        ("image_resizer", "ImageResizer", None, False),
        ("feature_extractor", "FeatureExtractor", None, False),
        ("box_coder", "BoxCoder", None, False),
        ("box_predictor", "BoxPredictor", None, False),
        ("anchor_generator", "AnchorGenerator", None, False),
        ("post_processing", "PostProcessing", None, False),
        ("encode_background_as_zeros", "bool", "false", False),
        ("add_background_class", "bool", "true", False),
    ],
    "ImageResizer": [
        ("fixed_shape_resizer", "FixedShapeResizer", None, False),
        ("keep_aspect_ratio_resizer", "Unsupported", None, False),
        ("identity_resizer", "Unsupported", None, False),
        ("conditional_shape_resizer", "Unsupported", None, False),
        ("pure_tf_resizer", "Unsupported", None, False),
    ],
    "FixedShapeResizer": [
        ("height", "int32", "300", False),
        ("width", "int32", "300", False),
    ],
    "FeatureExtractor": [
        ("type", "string", None, False),
        ("depth_multiplier", "float", "1.0", False),
        ("min_depth", "int32", "16", False),
        ("pad_to_multiple", "int32", "1", False),
        ("use_explicit_padding", "bool", "false", False),
        ("use_depthwise", "bool", "false", False),
        ("conv_hyperparams", "Hyperparams", None, False),
        ("fpn", "FeaturePyramidNetworks", None, False),
    ],
    "FeaturePyramidNetworks": [
        ("min_level", "int32", "3", False),
        ("max_level", "int32", "7", False),
        ("additional_layer_depth", "int32", "256", False),
    ],
    "Hyperparams": [
        ("activation", "Activation", "RELU", False),
        ("batch_norm", "BatchNorm", None, False),
    ],
    "BatchNorm": [
        ("epsilon", "float", "0.001", False),
        ("center", "bool", "true", False),
        ("scale", "bool", "false", False),
    ],
    "BoxCoder": [
        ("faster_rcnn_box_coder", "FasterRcnnBoxCoder", None, False),
        ("mean_stddev_box_coder", "Unsupported", None, False),
        ("square_box_coder", "Unsupported", None, False),
        ("keypoint_box_coder", "Unsupported", None, False),
    ],
    "FasterRcnnBoxCoder": [
        ("y_scale", "float", "10.0", False),
        ("x_scale", "float", "10.0", False),
        ("height_scale", "float", "5.0", False),
        ("width_scale", "float", "5.0", False),
    ],
    "BoxPredictor": [
        ("convolutional_box_predictor", "ConvolutionalBoxPredictor", None, False),
        ("weight_shared_convolutional_box_predictor", "WeightSharedConvolutionalBoxPredictor", None, False),
        ("mask_rcnn_box_predictor", "Unsupported", None, False),
        ("rfcn_box_predictor", "Unsupported", None, False),
    ],
    "ConvolutionalBoxPredictor": [
        ("conv_hyperparams", "Hyperparams", None, False),
        ("num_layers_before_predictor", "int32", "0", False),
        ("kernel_size", "int32", "1", False),
        ("box_code_size", "int32", "4", False),
        ("use_depthwise", "bool", "false", False),
        ("apply_sigmoid_to_scores", "bool", "false", False),
    ],
    "WeightSharedConvolutionalBoxPredictor": [
        ("conv_hyperparams", "Hyperparams", None, False),
        ("num_layers_before_predictor", "int32", "0", False),
        ("depth", "int32", "0", False),
        ("kernel_size", "int32", "3", False),
        ("box_code_size", "int32", "4", False),
        ("share_prediction_tower", "bool", "false", False),
        ("use_depthwise", "bool", "false", False),
    ],
    "AnchorGenerator": [
        ("ssd_anchor_generator", "SsdAnchorGenerator", None, False),
        ("multiscale_anchor_generator", "MultiscaleAnchorGenerator", None, False),
        ("grid_anchor_generator", "Unsupported", None, False),
        ("flexible_grid_anchor_generator", "Unsupported", None, False),
    ],
    "SsdAnchorGenerator": [
        ("num_layers", "int32", "6", False),
        ("min_scale", "float", "0.2", False),
        ("max_scale", "float", "0.95", False),
        ("scales", "float", None, True),
        ("aspect_ratios", "float", None, True),
        ("interpolated_scale_aspect_ratio", "float", "1.0", False),
        ("reduce_boxes_in_lowest_layer", "bool", "true", False),
        ("base_anchor_height", "float", "1.0", False),
        ("base_anchor_width", "float", "1.0", False),
        ("height_stride", "int32", None, True),
        ("width_stride", "int32", None, True),
        ("height_offset", "int32", None, True),
        ("width_offset", "int32", None, True),
    ],
    "MultiscaleAnchorGenerator": [
        ("min_level", "int32", "3", False),
        ("max_level", "int32", "7", False),
        ("anchor_scale", "float", "4.0", False),
        ("aspect_ratios", "float", None, True),
        ("scales_per_octave", "int32", "2", False),
        ("normalize_coordinates", "bool", "true", False),
    ],
    "PostProcessing": [
        ("batch_non_max_suppression", "BatchNonMaxSuppression", None, False),
        ("score_converter", "ScoreConverter", "IDENTITY", False),
        ("logit_scale", "float", "1.0", False),
    ],
    "BatchNonMaxSuppression": [
        ("score_threshold", "float", "0.0", False),
        ("iou_threshold", "float", "0.6", False),
        ("max_detections_per_class", "int32", "100", False),
        ("max_total_detections", "int32", "100", False),
        ("use_class_agnostic_nms", "bool", "false", False),
    ],
}


def _float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


@dataclasses.dataclass(frozen=True)
class Range:
    """Valid values of a numeric field: finite, in [low, high] ((low, high] if `low_excluded`)."""
    low: float
    high: Optional[float]  # None: up to the largest value of the field's type
    why: str
    low_excluded: bool = False
    zero_disables: bool = False  # 0 is valid too: it switches the feature off
    not_above: Optional[str] = None  # a field of the same message this one may not exceed

    def allows(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.zero_disables and value == 0:
            return True
        above_low = value > self.low if self.low_excluded else value >= self.low
        return above_low and (self.high is None or value <= self.high)

    def in_float32(self) -> "Range":
        """This range with its bounds rounded to float32, as the values of a float field are stored."""
        high = None if self.high is None else _float32(self.high)
        return dataclasses.replace(self, low=_float32(self.low), high=high)

    def requirement(self, integer: bool) -> str:
        """What a value must be, e.g. "an integer in [33, 4096]"."""
        low = f"{self.low:g}"
        if self.high is None:
            bounds = f"above {low}" if self.low_excluded else f"of at least {low}"
        else:
            bounds = f"in {'(' if self.low_excluded else '['}{low}, {self.high:g}]"
        text = f"{'an integer' if integer else 'a finite number'} {bounds}"
        return f"0 (off) or {text}" if self.zero_disables else text


# The OD API refuses inputs under 33 pixels (`check_min_image_dim`: 33 for its MobileNet extractors,
# 129 for ResNet FPN); 4096 is four times the largest zoo input and keeps anchors under a few million.
_IMAGE_SIDE = Range(33, 4096, "input pixels (the OD API's feature extractors need at least 33)")
# Level L has stride 2**L; at 2**12 = 4096, the largest input side, a level is a single cell.
_LEVEL = Range(1, 12, "level L has stride 2^L, and 2^12 is the largest input side")
# RetinaNet uses 256 channels; a 3x3 convolution of 1024 channels holds 38 MB of weights.
_CHANNELS = Range(1, 1024, "channels of a layer (256 in the zoo)")
_TOWER_LAYERS = Range(0, 16, "convolutions before each head (4 in RetinaNet)")
# 1 and 3 in the zoo's heads; 7 is the widest kernel of the supported networks (ResNet's conv1).
_KERNEL = Range(1, 7, "kernel side (1 or 3 in the zoo)")
_BOX_CODE_SIZE = Range(1, 64, "numbers per box code (4; more with keypoints)")
# Box codes are divided by these (the OD API asserts they are positive) and height and width
# exponentiated: 0.01 to 1000 spans the zoo's 10 and 5 by far, and keeps decoded boxes finite.
_BOX_CODER_SCALE = Range(0.01, 1000, "box codes are divided by it (10 and 5 in the zoo)")
# Anchor sizes, in image sides (0.1 to 1 in the zoo). With the aspect-ratio bounds below, every
# anchor side (scale x base x sqrt(ratio)) stays finite; an anchor 10 images wide is of no use.
_ANCHOR_SIZE = Range(0, 10, "in image sides (0.1 to 1 in the zoo)", low_excluded=True)
# Width / height of an anchor, used through its square root (1/3 to 3 in the zoo).
_ASPECT_RATIO = Range(0.001, 1000, "anchor width / height (1/3 to 3 in the zoo)")
_DETECTIONS = Range(1, 10000, "detections kept (100 in the zoo)")

# "Message.field" -> valid values, for every int32 and float field of `_MESSAGES`.
RANGES: dict[str, Range] = {
    "Quantization.delay": Range(0, None, "the training step quantization starts at"),
    # TF's FakeQuant takes 2 to 16 bits; the export supports 8 (a support rule of pipeline_config).
    "Quantization.weight_bits": Range(2, 16, "FakeQuant quantizes to 2 to 16 bits"),
    "Quantization.activation_bits": Range(2, 16, "FakeQuant quantizes to 2 to 16 bits"),
    # The class heads hold about 65 KB of weights per class (MobileNet SSD), and a frozen graph must
    # stay under protobuf's 2 GiB; Open Images, the largest label set of the zoo, has 601 classes.
    "Ssd.num_classes": Range(1, 10000, "classes besides the background"),
    "FixedShapeResizer.height": _IMAGE_SIDE,
    "FixedShapeResizer.width": _IMAGE_SIDE,
    # Channels are base depth x multiplier (0.25 to 1.4 in the zoo); 4 keeps the widest layer at 5120.
    "FeatureExtractor.depth_multiplier": Range(0, 4, "scales the channels of every layer (1 in the zoo)",
                                               low_excluded=True),
    # A floor on channels for small multipliers (16 in the zoo): with 0, a small depth_multiplier
    # builds layers without channels (1 means no floor); above 512 it widens every thin layer.
    "FeatureExtractor.min_depth": Range(1, 512, "the fewest channels of a layer (16 in the zoo)"),
    "FeatureExtractor.pad_to_multiple": Range(1, 4096, "the input is padded to a multiple of it"),
    "FeaturePyramidNetworks.min_level": dataclasses.replace(_LEVEL, not_above="max_level"),
    "FeaturePyramidNetworks.max_level": _LEVEL,
    "FeaturePyramidNetworks.additional_layer_depth": _CHANNELS,
    # Added to the moving variance under a square root: positive, so that nothing is divided by zero;
    # at most 1, so that the identity batch norm of a reconstruction (variance 1 - epsilon) exists.
    "BatchNorm.epsilon": Range(0, 1, "added to the variance under a square root (0.001 in the zoo)",
                               low_excluded=True),
    "FasterRcnnBoxCoder.y_scale": _BOX_CODER_SCALE,
    "FasterRcnnBoxCoder.x_scale": _BOX_CODER_SCALE,
    "FasterRcnnBoxCoder.height_scale": _BOX_CODER_SCALE,
    "FasterRcnnBoxCoder.width_scale": _BOX_CODER_SCALE,
    "ConvolutionalBoxPredictor.num_layers_before_predictor": _TOWER_LAYERS,
    "ConvolutionalBoxPredictor.kernel_size": _KERNEL,
    "ConvolutionalBoxPredictor.box_code_size": _BOX_CODE_SIZE,
    "WeightSharedConvolutionalBoxPredictor.num_layers_before_predictor": _TOWER_LAYERS,
    # 0, the default, suits heads without tower layers (pipeline_config refuses it with them).
    "WeightSharedConvolutionalBoxPredictor.depth": dataclasses.replace(_CHANNELS, low=0),
    "WeightSharedConvolutionalBoxPredictor.kernel_size": _KERNEL,
    "WeightSharedConvolutionalBoxPredictor.box_code_size": _BOX_CODE_SIZE,
    # One anchor layer per feature map (6 in the zoo); stride-2 maps of the largest input end by 12.
    "SsdAnchorGenerator.num_layers": Range(1, 12, "feature maps with anchors (6 in the zoo)"),
    "SsdAnchorGenerator.min_scale": dataclasses.replace(_ANCHOR_SIZE, not_above="max_scale"),
    "SsdAnchorGenerator.max_scale": _ANCHOR_SIZE,
    "SsdAnchorGenerator.scales": _ANCHOR_SIZE,
    "SsdAnchorGenerator.aspect_ratios": _ASPECT_RATIO,
    # The OD API leaves the anchor of interpolated scale out when this is 0.
    "SsdAnchorGenerator.interpolated_scale_aspect_ratio": dataclasses.replace(_ASPECT_RATIO, zero_disables=True),
    "SsdAnchorGenerator.base_anchor_height": _ANCHOR_SIZE,
    "SsdAnchorGenerator.base_anchor_width": _ANCHOR_SIZE,
    "SsdAnchorGenerator.height_stride": Range(1, 4096, "pixels between anchor centres"),
    "SsdAnchorGenerator.width_stride": Range(1, 4096, "pixels between anchor centres"),
    "SsdAnchorGenerator.height_offset": Range(0, 4096, "pixels to the first anchor centre"),
    "SsdAnchorGenerator.width_offset": Range(0, 4096, "pixels to the first anchor centre"),
    "MultiscaleAnchorGenerator.min_level": dataclasses.replace(_LEVEL, not_above="max_level"),
    "MultiscaleAnchorGenerator.max_level": _LEVEL,
    # Anchor side = anchor_scale x stride (4 in RetinaNet); at 100 the smallest level-3 anchor is 800 px.
    "MultiscaleAnchorGenerator.anchor_scale": Range(0, 100, "anchor side / feature stride (4 in the zoo)",
                                                    low_excluded=True),
    "MultiscaleAnchorGenerator.aspect_ratios": _ASPECT_RATIO,
    # Octave scales are 2 ** (k / scales_per_octave); each adds anchors to every cell.
    "MultiscaleAnchorGenerator.scales_per_octave": Range(1, 16, "anchor scales per octave (2 in the zoo)"),
    # Logits are divided by it (a temperature): beyond 0.01 to 100 scores saturate to 0 and 1 (and a
    # softmax of overflowing logits is NaN) or flatten to one value.
    "PostProcessing.logit_scale": Range(0.01, 100, "logits are divided by it (1 in the zoo)"),
    # Scores are probabilities after the SIGMOID and SOFTMAX converters (every zoo model).
    "BatchNonMaxSuppression.score_threshold": Range(0, 1, "a score (a probability in the zoo)"),
    # The OD API refuses values outside [0, 1].
    "BatchNonMaxSuppression.iou_threshold": Range(0, 1, "an intersection over union"),
    # The OD API refuses more detections per class than in total.
    "BatchNonMaxSuppression.max_detections_per_class": dataclasses.replace(
        _DETECTIONS, not_above="max_total_detections"),
    "BatchNonMaxSuppression.max_total_detections": _DETECTIONS,
}

_ENUMS = {
    "Activation": ["NONE", "RELU", "RELU_6", "SWISH"],
    "ScoreConverter": ["IDENTITY", "SIGMOID", "SOFTMAX"],
}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="rules_ssd_tflite/pipeline.proto", package=_PACKAGE, syntax="proto2")
    for enum_name, values in _ENUMS.items():
        enum = proto.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    for message_name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=message_name)
        for number, (name, type_name, default, repeated) in enumerate(fields, start=1):
            field = message.field.add(
                name=name, number=number,
                label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL)
            if type_name in _TYPES:
                field.type = _TYPES[type_name]
            else:
                field.type = _FIELD.TYPE_ENUM if type_name in _ENUMS else _FIELD.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{type_name}"
            if default is not None:
                field.default_value = default
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())

TrainEvalPipelineConfig = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.TrainEvalPipelineConfig"))
