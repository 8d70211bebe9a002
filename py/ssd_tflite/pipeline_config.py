"""Reads `pipeline.config` into the typed settings the export needs.

The file is parsed with protobuf text format against `pipeline_schema`;
fields the export does not use are skipped, every number is checked against
its range in `pipeline_schema.RANGES` (all violations reported at once), and
anything the export cannot build is refused with the path of the field at fault.
"""

import dataclasses
from typing import Optional

from google.protobuf import descriptor, text_format

from ssd_tflite import pipeline_schema
from ssd_tflite.errors import ConfigError

MOBILENET_V1 = "ssd_mobilenet_v1"
MOBILENET_V2 = "ssd_mobilenet_v2"
RESNET50_V1_FPN = "ssd_resnet50_v1_fpn"
FEATURE_EXTRACTORS = (MOBILENET_V1, MOBILENET_V2, RESNET50_V1_FPN)


@dataclasses.dataclass(frozen=True)
class SsdAnchors:
    """`ssd_anchor_generator`: hand-picked scales per feature map (SSD paper)."""
    num_layers: int
    min_scale: float
    max_scale: float
    scales: tuple[float, ...]
    aspect_ratios: tuple[float, ...]
    interpolated_scale_aspect_ratio: float
    reduce_boxes_in_lowest_layer: bool
    base_anchor_height: float
    base_anchor_width: float


@dataclasses.dataclass(frozen=True)
class MultiscaleAnchors:
    """`multiscale_anchor_generator`: RetinaNet anchors on FPN levels."""
    min_level: int
    max_level: int
    anchor_scale: float
    aspect_ratios: tuple[float, ...]
    scales_per_octave: int
    normalize_coordinates: bool


@dataclasses.dataclass(frozen=True)
class FeatureExtractorSpec:
    type: str
    depth_multiplier: float
    min_depth: int
    use_depthwise: bool
    batch_norm_epsilon: float
    fpn_min_level: int
    fpn_max_level: int
    fpn_depth: int


@dataclasses.dataclass(frozen=True)
class BoxPredictorSpec:
    weight_shared: bool
    kernel_size: int
    use_depthwise: bool
    num_layers_before_predictor: int
    depth: int
    batch_norm_epsilon: float


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything about one SSD model that shapes its exported graph."""
    num_classes: int
    height: int
    width: int
    feature_extractor: FeatureExtractorSpec
    box_predictor: BoxPredictorSpec
    anchors: SsdAnchors | MultiscaleAnchors
    box_coder_scales: tuple[float, float, float, float]  # y, x, height, width
    score_converter: str
    logit_scale: float
    nms_score_threshold: float
    nms_iou_threshold: float
    quantized: bool
    use_moving_averages: bool

    @property
    def num_anchors_per_location(self) -> tuple[int, ...]:
        """Anchors per cell of each feature map, in feature-map order."""
        if isinstance(self.anchors, MultiscaleAnchors):
            levels = self.anchors.max_level - self.anchors.min_level + 1
            return (len(self.anchors.aspect_ratios) * self.anchors.scales_per_octave,) * levels
        per_layer = len(self.anchors.aspect_ratios) + (self.anchors.interpolated_scale_aspect_ratio > 0)
        counts = [per_layer] * self.anchors.num_layers
        if self.anchors.reduce_boxes_in_lowest_layer:
            counts[0] = 3
        return tuple(counts)


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


# The feature maps each extractor yields: MobileNets 6, ResNet FPN one per level.
MOBILENET_FEATURE_MAPS = 6
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


def _model_spec(config, path: str) -> ModelSpec:
    kind = _which(config.model, "model", path)
    _require(kind == "ssd", path, "model", kind, "only SSD detection models can be exported to TFLite")
    ssd = config.model.ssd

    resizer = _which(ssd.image_resizer, "model.ssd.image_resizer", path)
    _require(resizer == "fixed_shape_resizer", path, "model.ssd.image_resizer", resizer,
             "TFLite models need a fixed input size (fixed_shape_resizer)")
    size = ssd.image_resizer.fixed_shape_resizer

    extractor = ssd.feature_extractor
    _require(extractor.type in FEATURE_EXTRACTORS, path, "model.ssd.feature_extractor.type", extractor.type,
             "supported types are " + ", ".join(FEATURE_EXTRACTORS))
    _require(not extractor.use_explicit_padding, path, "model.ssd.feature_extractor.use_explicit_padding",
             True, "only SAME padding is implemented")
    _require(extractor.pad_to_multiple == 1, path, "model.ssd.feature_extractor.pad_to_multiple",
             extractor.pad_to_multiple, "the fixed input size is used as is")
    _hyperparams(extractor.conv_hyperparams, "model.ssd.feature_extractor.conv_hyperparams", path)
    _require(ssd.add_background_class, path, "model.ssd.add_background_class", False,
             "the class head predicts a background class, as TFLite_Detection_PostProcess expects")
    is_fpn = extractor.type == RESNET50_V1_FPN
    _require(not is_fpn or extractor.HasField("fpn"), path, "model.ssd.feature_extractor.fpn", None,
             f"{RESNET50_V1_FPN} needs an fpn block with min_level and max_level")
    if is_fpn:
        _require(2 <= extractor.fpn.min_level <= 5 <= extractor.fpn.max_level, path,
                 "model.ssd.feature_extractor.fpn", (extractor.fpn.min_level, extractor.fpn.max_level),
                 "ResNet50 blocks give levels 2..5, so min_level must be 2..5 and max_level at least 5")

    coder = _which(ssd.box_coder, "model.ssd.box_coder", path)
    _require(coder == "faster_rcnn_box_coder", path, "model.ssd.box_coder", coder,
             "TFLite_Detection_PostProcess decodes faster_rcnn_box_coder boxes only")
    scales = ssd.box_coder.faster_rcnn_box_coder

    predictor_kind = _which(ssd.box_predictor, "model.ssd.box_predictor", path)
    expected_predictor = ("weight_shared_convolutional_box_predictor" if is_fpn
                          else "convolutional_box_predictor")
    _require(predictor_kind == expected_predictor, path, "model.ssd.box_predictor", predictor_kind,
             f"{extractor.type} is exported with {expected_predictor}")
    predictor = getattr(ssd.box_predictor, predictor_kind)
    if not is_fpn:
        _require(predictor.num_layers_before_predictor == 0, path,
                 "model.ssd.box_predictor.convolutional_box_predictor.num_layers_before_predictor",
                 predictor.num_layers_before_predictor, "only 0 is implemented")
    else:
        _require(not predictor.share_prediction_tower and not predictor.use_depthwise, path,
                 "model.ssd.box_predictor.weight_shared_convolutional_box_predictor",
                 "share_prediction_tower/use_depthwise", "only separate, regular convolution towers are implemented")
        _require(predictor.depth > 0 or predictor.num_layers_before_predictor == 0, path,
                 "model.ssd.box_predictor.weight_shared_convolutional_box_predictor.depth", predictor.depth,
                 "its tower layers (num_layers_before_predictor) need channels")
    _require(predictor.box_code_size == 4, path, f"model.ssd.box_predictor.{predictor_kind}.box_code_size",
             predictor.box_code_size, "TFLite_Detection_PostProcess decodes 4-number box codes")
    _hyperparams(predictor.conv_hyperparams, f"model.ssd.box_predictor.{predictor_kind}.conv_hyperparams", path)
    if not is_fpn:
        _require(not predictor.apply_sigmoid_to_scores, path,
                 "model.ssd.box_predictor.convolutional_box_predictor.apply_sigmoid_to_scores", True,
                 "scores are converted once, by post_processing.score_converter")

    anchors_kind = _which(ssd.anchor_generator, "model.ssd.anchor_generator", path)
    _require(anchors_kind in ("ssd_anchor_generator", "multiscale_anchor_generator"), path,
             "model.ssd.anchor_generator", anchors_kind,
             "supported generators are ssd_anchor_generator and multiscale_anchor_generator")
    expected_anchors = "multiscale_anchor_generator" if is_fpn else "ssd_anchor_generator"
    _require(anchors_kind == expected_anchors, path, "model.ssd.anchor_generator", anchors_kind,
             f"{extractor.type} is exported with {expected_anchors}")
    anchors = _anchors(getattr(ssd.anchor_generator, anchors_kind), path, f"model.ssd.anchor_generator.{anchors_kind}")
    if is_fpn:
        levels = (anchors.min_level, anchors.max_level)
        _require(levels == (extractor.fpn.min_level, extractor.fpn.max_level), path,
                 "model.ssd.anchor_generator.multiscale_anchor_generator", levels,
                 f"its min_level and max_level must be the FPN's, {(extractor.fpn.min_level, extractor.fpn.max_level)}")
        _require(anchors.normalize_coordinates, path,
                 "model.ssd.anchor_generator.multiscale_anchor_generator.normalize_coordinates", False,
                 "TFLite_Detection_PostProcess takes anchors in normalized coordinates")
    else:
        _require(anchors.num_layers == MOBILENET_FEATURE_MAPS, path,
                 "model.ssd.anchor_generator.ssd_anchor_generator.num_layers", anchors.num_layers,
                 f"{extractor.type} yields {MOBILENET_FEATURE_MAPS} feature maps, one anchor layer each")

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
        _require(not is_fpn, path, "graph_rewriter.quantization", "quantization",
                 f"quantization-aware {RESNET50_V1_FPN} checkpoints are not supported; "
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
            weight_shared=is_fpn,
            kernel_size=predictor.kernel_size,
            use_depthwise=predictor.use_depthwise,
            num_layers_before_predictor=predictor.num_layers_before_predictor,
            depth=predictor.depth if is_fpn else 0,
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
