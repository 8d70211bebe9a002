"""Reads `pipeline.config` into the typed settings the export needs.

The file is parsed with protobuf text format against `pipeline_schema`;
fields the export does not use are skipped, every number is checked against
its range in `pipeline_schema.RANGES` (all violations reported at once), and
anything the export cannot build is refused with the path of the field at fault.
What depends on the feature extractor (its box predictor and anchor generator,
its own checks, its quantization support) is read from its declaration in
`architectures`.
"""

from typing import Optional

from google.protobuf import descriptor, text_format

from ssd_tflite import architectures, pipeline_schema
from ssd_tflite.architecture import ANCHOR_GENERATORS, CONVOLUTIONAL_BOX_PREDICTOR, WEIGHT_SHARED_BOX_PREDICTOR
from ssd_tflite.errors import ConfigError
from ssd_tflite.model_spec import BoxPredictorSpec, FeatureExtractorSpec, ModelSpec, MultiscaleAnchors, SsdAnchors

def read(path: str, config_override: str = "") -> ModelSpec:
    """Parses and validates the pipeline config at `path`."""
    try:
        with open(path) as config_file:
            text = config_file.read()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the pipeline config: {error.strerror}") from None
    return parse(text, path, config_override)


def parse(text: str, path: str = "pipeline.config", config_override: str = "") -> ModelSpec:
    """Parses config text; `config_override` is text format merged on top."""
    config = pipeline_schema.TrainEvalPipelineConfig()
    for source, content in ((path, text), ("--config_override", config_override)):
        try:
            text_format.Merge(content, config, allow_unknown_field=True)
        except text_format.ParseError as error:
            raise ConfigError(f"{source}:{error}") from None
    _check_ranges(config, path)
    return _model_spec(config, path)


_FIELD = descriptor.FieldDescriptor
_NOT_NUMBERS = frozenset({_FIELD.CPPTYPE_MESSAGE, _FIELD.CPPTYPE_ENUM, _FIELD.CPPTYPE_BOOL, _FIELD.CPPTYPE_STRING})
_FLOATS = frozenset({_FIELD.CPPTYPE_FLOAT, _FIELD.CPPTYPE_DOUBLE})


def _check_ranges(config, path: str) -> None:
    """Refuses numbers outside `pipeline_schema.RANGES`, all of them in one ConfigError."""
    violations = _range_violations(config, "")
    if len(violations) == 1:
        raise ConfigError(f"{path}: {violations[0]}")
    if violations:
        raise ConfigError(f"{path}: {len(violations)} values are out of range:\n"
                          + "\n".join("  " + violation for violation in violations))


def _range_violations(message, prefix: str) -> list[str]:
    """A line "<field path> = <value>: must be ..." per number out of range in `message` and the messages set in it."""
    violations = []
    for field in message.DESCRIPTOR.fields:
        if field.cpp_type == _FIELD.CPPTYPE_MESSAGE:
            if message.HasField(field.name):
                violations += _range_violations(getattr(message, field.name), f"{prefix}{field.name}.")
        elif field.cpp_type not in _NOT_NUMBERS:
            violations += _field_violations(message, field, prefix + field.name)
    return violations


def _valid_values(message, field) -> pipeline_schema.Range:
    value_range = pipeline_schema.RANGES[f"{message.DESCRIPTOR.name}.{field.name}"]
    return value_range.in_float32() if field.type == _FIELD.TYPE_FLOAT else value_range


def _shown(value) -> str:
    return f"{value:.7g}" if isinstance(value, float) else str(value)


def _field_violations(message, field, path: str) -> list[str]:
    value_range = _valid_values(message, field)
    integer = field.cpp_type not in _FLOATS
    repeated = field.is_repeated
    values = getattr(message, field.name) if repeated else [getattr(message, field.name)]
    violations = []
    for index, value in enumerate(values):
        name = f"{path}[{index}]" if repeated else path
        if not value_range.allows(value):
            violations.append(f"{name} = {_shown(value)}: must be {value_range.requirement(integer)}; "
                              + value_range.why)
            continue
        if value_range.not_above is None:
            continue
        bound = getattr(message, value_range.not_above)
        partner = message.DESCRIPTOR.fields_by_name[value_range.not_above]
        if _valid_values(message, partner).allows(bound) and value > bound:
            violations.append(f"{name} = {_shown(value)}: must not exceed {value_range.not_above} ({_shown(bound)})")
    return violations


def _which(message, path: str, config_path: str) -> Optional[str]:
    """Name of the one field set in a message that is used as a oneof."""
    present = [field.name for field, _ in message.ListFields()]
    if len(present) > 1:
        raise ConfigError(f"{config_path}: {path}: only one of {', '.join(present)} may be set")
    return present[0] if present else None


def _require(condition: bool, config_path: str, field_path: str, value, why: str) -> None:
    if not condition:
        raise ConfigError(f"{config_path}: {field_path}: {value!r} is not supported: {why}")


# Fields of our schema that shape no part of the exported graph, as in the upstream export: the
# post-processing op's limits come from the export's flags, and `delay` and
# `encode_background_as_zeros` (how training encodes unmatched anchors) are training settings.
NOT_IN_THE_GRAPH = (
    "graph_rewriter.quantization.delay",
    "model.ssd.encode_background_as_zeros",
    "model.ssd.post_processing.batch_non_max_suppression.max_detections_per_class",
    "model.ssd.post_processing.batch_non_max_suppression.max_total_detections",
    "model.ssd.post_processing.batch_non_max_suppression.use_class_agnostic_nms",
)


def _hyperparams(hyperparams, field_path: str, path: str) -> None:
    """The layers are built with ReLU6 and a scaled, centred batch norm: refuse anything else."""
    activation = _enum_name(hyperparams, "activation")
    _require(activation == "RELU_6", path, f"{field_path}.activation", activation,
             "the layers are built with RELU_6, as in every SSD model of the zoo")
    _require(hyperparams.HasField("batch_norm"), path, f"{field_path}.batch_norm", None,
             "the layers are built with batch norm folded into them")
    for field in ("scale", "center"):
        _require(getattr(hyperparams.batch_norm, field), path, f"{field_path}.batch_norm.{field}", False,
                 "the checkpoint's gamma and beta are folded in; true is the only setting implemented")


def _convolutional_predictor(predictor, field_path: str, path: str) -> None:
    """`convolutional_box_predictor`: a pair of heads per feature map, without towers."""
    _require(predictor.num_layers_before_predictor == 0, path, f"{field_path}.num_layers_before_predictor",
             predictor.num_layers_before_predictor, "only 0 is implemented")
    _predictor_heads(predictor, field_path, path)
    _require(not predictor.apply_sigmoid_to_scores, path, f"{field_path}.apply_sigmoid_to_scores", True,
             "scores are converted once, by post_processing.score_converter")


def _weight_shared_predictor(predictor, field_path: str, path: str) -> None:
    """`weight_shared_convolutional_box_predictor`: the same towers and heads on every level."""
    _require(not predictor.share_prediction_tower and not predictor.use_depthwise, path, field_path,
             "share_prediction_tower/use_depthwise", "only separate, regular convolution towers are implemented")
    _require(predictor.depth > 0 or predictor.num_layers_before_predictor == 0, path, f"{field_path}.depth",
             predictor.depth, "its tower layers (num_layers_before_predictor) need channels")
    _predictor_heads(predictor, field_path, path)


def _predictor_heads(predictor, field_path: str, path: str) -> None:
    """What the heads of either box predictor need."""
    _require(predictor.box_code_size == 4, path, f"{field_path}.box_code_size", predictor.box_code_size,
             "TFLite_Detection_PostProcess decodes 4-number box codes")
    _hyperparams(predictor.conv_hyperparams, f"{field_path}.conv_hyperparams", path)


# The checks of each box predictor an architecture can name (Architecture.box_predictor).
_BOX_PREDICTOR_CHECKS = {
    CONVOLUTIONAL_BOX_PREDICTOR: _convolutional_predictor,
    WEIGHT_SHARED_BOX_PREDICTOR: _weight_shared_predictor,
}


def _model_spec(config, path: str) -> ModelSpec:
    def require(condition: bool, field_path: str, value, why: str) -> None:
        _require(condition, path, field_path, value, why)

    kind = _which(config.model, "model", path)
    _require(kind == "ssd", path, "model", kind, "only SSD detection models can be exported to TFLite")
    ssd = config.model.ssd

    resizer = _which(ssd.image_resizer, "model.ssd.image_resizer", path)
    _require(resizer == "fixed_shape_resizer", path, "model.ssd.image_resizer", resizer,
             "TFLite models need a fixed input size (fixed_shape_resizer)")
    size = ssd.image_resizer.fixed_shape_resizer

    extractor = ssd.feature_extractor
    _require(extractor.type in architectures.BY_TYPE, path, "model.ssd.feature_extractor.type", extractor.type,
             "supported types are " + ", ".join(architectures.BY_TYPE))
    architecture = architectures.BY_TYPE[extractor.type]
    _require(not extractor.use_explicit_padding, path, "model.ssd.feature_extractor.use_explicit_padding",
             True, "only SAME padding is implemented")
    _require(extractor.pad_to_multiple == 1, path, "model.ssd.feature_extractor.pad_to_multiple",
             extractor.pad_to_multiple, "the fixed input size is used as is")
    _hyperparams(extractor.conv_hyperparams, "model.ssd.feature_extractor.conv_hyperparams", path)
    _require(ssd.add_background_class, path, "model.ssd.add_background_class", False,
             "the class head predicts a background class, as TFLite_Detection_PostProcess expects")
    architecture.check_feature_extractor(extractor, require)

    coder = _which(ssd.box_coder, "model.ssd.box_coder", path)
    _require(coder == "faster_rcnn_box_coder", path, "model.ssd.box_coder", coder,
             "TFLite_Detection_PostProcess decodes faster_rcnn_box_coder boxes only")
    scales = ssd.box_coder.faster_rcnn_box_coder

    predictor_kind = _which(ssd.box_predictor, "model.ssd.box_predictor", path)
    _require(predictor_kind == architecture.box_predictor, path, "model.ssd.box_predictor", predictor_kind,
             f"{extractor.type} is exported with {architecture.box_predictor}")
    predictor = getattr(ssd.box_predictor, predictor_kind)
    _BOX_PREDICTOR_CHECKS[predictor_kind](predictor, f"model.ssd.box_predictor.{predictor_kind}", path)
    weight_shared = predictor_kind == WEIGHT_SHARED_BOX_PREDICTOR

    anchors_kind = _which(ssd.anchor_generator, "model.ssd.anchor_generator", path)
    _require(anchors_kind in ANCHOR_GENERATORS, path, "model.ssd.anchor_generator", anchors_kind,
             "supported generators are " + " and ".join(ANCHOR_GENERATORS))
    _require(anchors_kind == architecture.anchor_generator, path, "model.ssd.anchor_generator", anchors_kind,
             f"{extractor.type} is exported with {architecture.anchor_generator}")
    anchors = _anchors(getattr(ssd.anchor_generator, anchors_kind), path, f"model.ssd.anchor_generator.{anchors_kind}")
    architecture.check_anchors(extractor, anchors, require)

    score_converter = _enum_name(ssd.post_processing, "score_converter")
    nms = ssd.post_processing.batch_non_max_suppression

    quantized = config.HasField("graph_rewriter") and config.graph_rewriter.HasField("quantization")
    if quantized:
        quantization = config.graph_rewriter.quantization
        _require(not quantization.symmetric, path, "graph_rewriter.quantization.symmetric", True,
                 "TFLite uint8 models quantize asymmetrically (a zero point per tensor)")
        for field in ("weight_bits", "activation_bits"):
            _require(getattr(quantization, field) == 8, path, f"graph_rewriter.quantization.{field}",
                     getattr(quantization, field), "TFLite uint8 models need 8 bits")
        _require(architecture.quantization_aware, path, "graph_rewriter.quantization", "quantization",
                 f"quantization-aware {extractor.type} checkpoints are not supported; "
                 "export the float model with --calibration_images for a uint8 build instead")

    epsilon = extractor.conv_hyperparams.batch_norm.epsilon
    return ModelSpec(
        num_classes=ssd.num_classes,
        height=size.height,
        width=size.width,
        feature_extractor=FeatureExtractorSpec(
            type=extractor.type,
            depth_multiplier=extractor.depth_multiplier,
            min_depth=extractor.min_depth,
            use_depthwise=extractor.use_depthwise,
            batch_norm_epsilon=epsilon,
            fpn_min_level=extractor.fpn.min_level,
            fpn_max_level=extractor.fpn.max_level,
            fpn_depth=extractor.fpn.additional_layer_depth,
        ),
        box_predictor=BoxPredictorSpec(
            weight_shared=weight_shared,
            kernel_size=predictor.kernel_size,
            use_depthwise=predictor.use_depthwise,
            num_layers_before_predictor=predictor.num_layers_before_predictor,
            depth=predictor.depth if weight_shared else 0,
            batch_norm_epsilon=predictor.conv_hyperparams.batch_norm.epsilon,
        ),
        anchors=anchors,
        box_coder_scales=(scales.y_scale, scales.x_scale, scales.height_scale, scales.width_scale),
        score_converter=score_converter,
        logit_scale=ssd.post_processing.logit_scale,
        nms_score_threshold=nms.score_threshold,
        nms_iou_threshold=nms.iou_threshold,
        quantized=quantized,
        use_moving_averages=config.eval_config.use_moving_averages,
    )


def _enum_name(message, field: str) -> str:
    """The symbolic name of an enum field's value."""
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(message, field)].name


def _anchors(generator, path: str, field_path: str) -> SsdAnchors | MultiscaleAnchors:
    _require(len(generator.aspect_ratios) > 0, path, f"{field_path}.aspect_ratios", [],
             "at least one aspect ratio is needed")
    if generator.DESCRIPTOR.name == "MultiscaleAnchorGenerator":
        _require(generator.normalize_coordinates, path, f"{field_path}.normalize_coordinates", False,
                 "TFLite_Detection_PostProcess takes anchors in normalized coordinates")
        return MultiscaleAnchors(
            min_level=generator.min_level,
            max_level=generator.max_level,
            anchor_scale=generator.anchor_scale,
            aspect_ratios=tuple(generator.aspect_ratios),
            scales_per_octave=generator.scales_per_octave,
            normalize_coordinates=generator.normalize_coordinates,
        )
    for field in ("height_stride", "width_stride", "height_offset", "width_offset"):
        _require(not getattr(generator, field), path, f"{field_path}.{field}", list(getattr(generator, field)),
                 "anchor strides and offsets are derived from the feature-map sizes")
    _require(not generator.scales or len(generator.scales) == generator.num_layers, path,
             f"{field_path}.scales", list(generator.scales), "give one scale per layer (num_layers)")
    return SsdAnchors(
        num_layers=generator.num_layers,
        min_scale=generator.min_scale,
        max_scale=generator.max_scale,
        scales=tuple(generator.scales),
        aspect_ratios=tuple(generator.aspect_ratios),
        interpolated_scale_aspect_ratio=generator.interpolated_scale_aspect_ratio,
        reduce_boxes_in_lowest_layer=generator.reduce_boxes_in_lowest_layer,
        base_anchor_height=generator.base_anchor_height,
        base_anchor_width=generator.base_anchor_width,
    )
