"""Our own protobuf schema for the parts of `pipeline.config` the export reads.

Field names, types and defaults follow the text format of the TensorFlow
Object Detection API's `TrainEvalPipelineConfig`. Only fields this project
uses are declared; text_format is told to skip the rest. A few unsupported
alternatives (`faster_rcnn`, other anchor generators, ...) are declared as
empty messages so that a config using them is recognised and refused by name.
"""

from typing import Any

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
