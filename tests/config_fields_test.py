"""Every field of our pipeline.config schema is honoured, refused by name, or shapes no graph.

Each field gets a case: an honoured field's new value must reach the model
spec the graph is built from; a refused value must end in a ConfigError that
names the field and the value. `test_every_schema_field_has_a_case` walks
the schema, so a field added without a case fails.

Each numeric field also gets range cases, from the schema's descriptors:
non-finite, negative, huge and just-outside values (from its entry in
`pipeline_schema.RANGES`) must be refused naming the field, and its edges
must pass the range check. A numeric field without a range fails.
"""

import math
import re

import numpy as np
from absl.testing import absltest, parameterized
from google.protobuf.descriptor import FieldDescriptor

import testing
from ssd_tflite import pipeline_config, pipeline_schema
from ssd_tflite.errors import ConfigError

MOBILENET = "ssd_mobilenet_v2_quantized_zoo.pipeline.config"
SSDLITE = "ssdlite_mobilenet_v2_zoo.pipeline.config"
RESNET = "ssd_resnet50_v1_fpn_finetune_11class.pipeline.config"

# field -> (base config, text merged on top (the export's --config_override), spec value getter, expected)
HONOURED = {
    "model.ssd.num_classes": (MOBILENET, "model { ssd { num_classes: 7 } }", lambda s: s.num_classes, 7),
    "model.ssd.image_resizer.fixed_shape_resizer.height": (
        MOBILENET, "model { ssd { image_resizer { fixed_shape_resizer { height: 320 } } } }", lambda s: s.height, 320),
    "model.ssd.image_resizer.fixed_shape_resizer.width": (
        MOBILENET, "model { ssd { image_resizer { fixed_shape_resizer { width: 320 } } } }", lambda s: s.width, 320),
    "model.ssd.feature_extractor.type": (MOBILENET, "model { ssd { feature_extractor { type: 'ssd_mobilenet_v1' } } }",
                                         lambda s: s.feature_extractor.type, "ssd_mobilenet_v1"),
    "model.ssd.feature_extractor.depth_multiplier": (
        MOBILENET, "model { ssd { feature_extractor { depth_multiplier: 0.5 } } }",
        lambda s: s.feature_extractor.depth_multiplier, 0.5),
    "model.ssd.feature_extractor.min_depth": (MOBILENET, "model { ssd { feature_extractor { min_depth: 8 } } }",
                                              lambda s: s.feature_extractor.min_depth, 8),
    "model.ssd.feature_extractor.use_depthwise": (MOBILENET, "model { ssd { feature_extractor { use_depthwise: true } } }",
                                                  lambda s: s.feature_extractor.use_depthwise, True),
    "model.ssd.feature_extractor.conv_hyperparams.batch_norm.epsilon": (
        MOBILENET, "model { ssd { feature_extractor { conv_hyperparams { batch_norm { epsilon: 0.25 } } } } }",
        lambda s: s.feature_extractor.batch_norm_epsilon, 0.25),
    "model.ssd.feature_extractor.fpn.min_level": (
        RESNET, "model { ssd { feature_extractor { fpn { min_level: 4 } } anchor_generator { "
                "multiscale_anchor_generator { min_level: 4 } } } }", lambda s: s.feature_extractor.fpn_min_level, 4),
    "model.ssd.feature_extractor.fpn.max_level": (
        RESNET, "model { ssd { feature_extractor { fpn { max_level: 6 } } anchor_generator { "
                "multiscale_anchor_generator { max_level: 6 } } } }", lambda s: s.feature_extractor.fpn_max_level, 6),
    "model.ssd.feature_extractor.fpn.additional_layer_depth": (
        RESNET, "model { ssd { feature_extractor { fpn { additional_layer_depth: 128 } } } }",
        lambda s: s.feature_extractor.fpn_depth, 128),
    "model.ssd.box_coder.faster_rcnn_box_coder.y_scale": (
        MOBILENET, "model { ssd { box_coder { faster_rcnn_box_coder { y_scale: 8 } } } }",
        lambda s: s.box_coder_scales[0], 8),
    "model.ssd.box_coder.faster_rcnn_box_coder.x_scale": (
        MOBILENET, "model { ssd { box_coder { faster_rcnn_box_coder { x_scale: 8 } } } }",
        lambda s: s.box_coder_scales[1], 8),
    "model.ssd.box_coder.faster_rcnn_box_coder.height_scale": (
        MOBILENET, "model { ssd { box_coder { faster_rcnn_box_coder { height_scale: 4 } } } }",
        lambda s: s.box_coder_scales[2], 4),
    "model.ssd.box_coder.faster_rcnn_box_coder.width_scale": (
        MOBILENET, "model { ssd { box_coder { faster_rcnn_box_coder { width_scale: 4 } } } }",
        lambda s: s.box_coder_scales[3], 4),
    "model.ssd.box_predictor.convolutional_box_predictor.kernel_size": (
        MOBILENET, "model { ssd { box_predictor { convolutional_box_predictor { kernel_size: 3 } } } }",
        lambda s: s.box_predictor.kernel_size, 3),
    "model.ssd.box_predictor.convolutional_box_predictor.use_depthwise": (
        MOBILENET, "model { ssd { box_predictor { convolutional_box_predictor { use_depthwise: true } } } }",
        lambda s: s.box_predictor.use_depthwise, True),
    "model.ssd.box_predictor.convolutional_box_predictor.conv_hyperparams.batch_norm.epsilon": (
        SSDLITE, "model { ssd { box_predictor { convolutional_box_predictor { conv_hyperparams { batch_norm { "
                 "epsilon: 0.25 } } } } } }", lambda s: s.box_predictor.batch_norm_epsilon, 0.25),
    "model.ssd.box_predictor.weight_shared_convolutional_box_predictor.num_layers_before_predictor": (
        RESNET, "model { ssd { box_predictor { weight_shared_convolutional_box_predictor { "
                "num_layers_before_predictor: 2 } } } }", lambda s: s.box_predictor.num_layers_before_predictor, 2),
    "model.ssd.box_predictor.weight_shared_convolutional_box_predictor.depth": (
        RESNET, "model { ssd { box_predictor { weight_shared_convolutional_box_predictor { depth: 128 } } } }",
        lambda s: s.box_predictor.depth, 128),
    "model.ssd.box_predictor.weight_shared_convolutional_box_predictor.kernel_size": (
        RESNET, "model { ssd { box_predictor { weight_shared_convolutional_box_predictor { kernel_size: 1 } } } }",
        lambda s: s.box_predictor.kernel_size, 1),
    "model.ssd.box_predictor.weight_shared_convolutional_box_predictor.conv_hyperparams.batch_norm.epsilon": (
        RESNET, "model { ssd { box_predictor { weight_shared_convolutional_box_predictor { conv_hyperparams { "
                "batch_norm { epsilon: 0.25 } } } } } }", lambda s: s.box_predictor.batch_norm_epsilon, 0.25),
    "model.ssd.anchor_generator.ssd_anchor_generator.min_scale": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { min_scale: 0.1 } } } }",
        lambda s: round(s.anchors.min_scale, 6), 0.1),
    "model.ssd.anchor_generator.ssd_anchor_generator.max_scale": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { max_scale: 0.9 } } } }",
        lambda s: round(s.anchors.max_scale, 6), 0.9),
    "model.ssd.anchor_generator.ssd_anchor_generator.scales": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { scales: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] "
                   "} } } }", lambda s: len(s.anchors.scales), 6),
    "model.ssd.anchor_generator.ssd_anchor_generator.aspect_ratios": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { aspect_ratios: 4.0 } } } }",
        lambda s: s.anchors.aspect_ratios[-1], 4.0),
    "model.ssd.anchor_generator.ssd_anchor_generator.interpolated_scale_aspect_ratio": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { interpolated_scale_aspect_ratio: 0 } } } }",
        lambda s: s.anchors.interpolated_scale_aspect_ratio, 0.0),
    "model.ssd.anchor_generator.ssd_anchor_generator.reduce_boxes_in_lowest_layer": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { reduce_boxes_in_lowest_layer: false } } } }",
        lambda s: s.anchors.reduce_boxes_in_lowest_layer, False),
    "model.ssd.anchor_generator.ssd_anchor_generator.base_anchor_height": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { base_anchor_height: 0.5 } } } }",
        lambda s: s.anchors.base_anchor_height, 0.5),
    "model.ssd.anchor_generator.ssd_anchor_generator.base_anchor_width": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { base_anchor_width: 0.5 } } } }",
        lambda s: s.anchors.base_anchor_width, 0.5),
    "model.ssd.anchor_generator.multiscale_anchor_generator.anchor_scale": (
        RESNET, "model { ssd { anchor_generator { multiscale_anchor_generator { anchor_scale: 3 } } } }",
        lambda s: s.anchors.anchor_scale, 3.0),
    "model.ssd.anchor_generator.multiscale_anchor_generator.aspect_ratios": (
        RESNET, "model { ssd { anchor_generator { multiscale_anchor_generator { aspect_ratios: 3.0 } } } }",
        lambda s: s.anchors.aspect_ratios[-1], 3.0),
    "model.ssd.anchor_generator.multiscale_anchor_generator.scales_per_octave": (
        RESNET, "model { ssd { anchor_generator { multiscale_anchor_generator { scales_per_octave: 3 } } } }",
        lambda s: s.anchors.scales_per_octave, 3),
    "model.ssd.post_processing.score_converter": (
        MOBILENET, "model { ssd { post_processing { score_converter: SOFTMAX } } }", lambda s: s.score_converter, "SOFTMAX"),
    "model.ssd.post_processing.logit_scale": (
        MOBILENET, "model { ssd { post_processing { logit_scale: 2 } } }", lambda s: s.logit_scale, 2.0),
    "model.ssd.post_processing.batch_non_max_suppression.score_threshold": (
        MOBILENET, "model { ssd { post_processing { batch_non_max_suppression { score_threshold: 0.25 } } } }",
        lambda s: s.nms_score_threshold, 0.25),
    "model.ssd.post_processing.batch_non_max_suppression.iou_threshold": (
        MOBILENET, "model { ssd { post_processing { batch_non_max_suppression { iou_threshold: 0.5 } } } }",
        lambda s: s.nms_iou_threshold, 0.5),
    "eval_config.use_moving_averages": (MOBILENET, "eval_config { use_moving_averages: false }",
                                        lambda s: s.use_moving_averages, False),
    "graph_rewriter.quantization": (SSDLITE, "graph_rewriter { quantization { delay: 1 } }", lambda s: s.quantized, True),
}

# field -> (base config, text merged on top, the field the error names, the value it names)
def _alternative(parent: str, name: str, base: str = "") -> tuple[str, str, str, str]:
    """A oneof alternative we do not support, refused by the parent's name and its own."""
    text = "".join(f"{part} {{ " for part in parent.split(".")) + f"{name} {{}}" + " }" * len(parent.split("."))
    return base, text, parent, repr(name)


REFUSED = {
    "model.faster_rcnn": _alternative("model", "faster_rcnn"),
    "model.center_net": _alternative("model", "center_net"),
    "model.experimental_model": _alternative("model", "experimental_model"),
    "model.ssd.add_background_class": (MOBILENET, "model { ssd { add_background_class: false } }",
                                       "model.ssd.add_background_class", "False"),
    "model.ssd.feature_extractor.type": (MOBILENET, "model { ssd { feature_extractor { type: 'ssd_inception_v2' } } }",
                                         "model.ssd.feature_extractor.type", "'ssd_inception_v2'"),
    "model.ssd.feature_extractor.use_explicit_padding": (
        MOBILENET, "model { ssd { feature_extractor { use_explicit_padding: true } } }",
        "model.ssd.feature_extractor.use_explicit_padding", "True"),
    "model.ssd.feature_extractor.pad_to_multiple": (
        MOBILENET, "model { ssd { feature_extractor { pad_to_multiple: 32 } } }",
        "model.ssd.feature_extractor.pad_to_multiple", "32"),
    "model.ssd.feature_extractor.fpn": (RESNET, "model { ssd { feature_extractor { fpn { min_level: 1 } } } }",
                                        "model.ssd.feature_extractor.fpn", "(1, 7)"),
    "model.ssd.box_predictor.convolutional_box_predictor.num_layers_before_predictor": (
        MOBILENET, "model { ssd { box_predictor { convolutional_box_predictor { num_layers_before_predictor: 1 } } } }",
        "model.ssd.box_predictor.convolutional_box_predictor.num_layers_before_predictor", "1"),
    "model.ssd.box_predictor.convolutional_box_predictor.apply_sigmoid_to_scores": (
        MOBILENET, "model { ssd { box_predictor { convolutional_box_predictor { apply_sigmoid_to_scores: true } } } }",
        "model.ssd.box_predictor.convolutional_box_predictor.apply_sigmoid_to_scores", "True"),
    "model.ssd.anchor_generator.ssd_anchor_generator.num_layers": (
        MOBILENET, "model { ssd { anchor_generator { ssd_anchor_generator { num_layers: 5 } } } }",
        "model.ssd.anchor_generator.ssd_anchor_generator.num_layers", "5"),
    "model.ssd.anchor_generator.multiscale_anchor_generator.normalize_coordinates": (
        RESNET, "model { ssd { anchor_generator { multiscale_anchor_generator { normalize_coordinates: false } } } }",
        "model.ssd.anchor_generator.multiscale_anchor_generator.normalize_coordinates", "False"),
    "model.ssd.anchor_generator.multiscale_anchor_generator.min_level": (
        RESNET, "model { ssd { anchor_generator { multiscale_anchor_generator { min_level: 4 } } } }",
        "model.ssd.anchor_generator.multiscale_anchor_generator", "(4, 7)"),
    "model.ssd.anchor_generator.multiscale_anchor_generator.max_level": (
        RESNET, "model { ssd { anchor_generator { multiscale_anchor_generator { max_level: 6 } } } }",
        "model.ssd.anchor_generator.multiscale_anchor_generator", "(3, 6)"),
    "graph_rewriter.quantization.weight_bits": (MOBILENET, "graph_rewriter { quantization { weight_bits: 4 } }",
                                                "graph_rewriter.quantization.weight_bits", "4"),
    "graph_rewriter.quantization.activation_bits": (MOBILENET, "graph_rewriter { quantization { activation_bits: 16 } }",
                                                    "graph_rewriter.quantization.activation_bits", "16"),
    "graph_rewriter.quantization.symmetric": (MOBILENET, "graph_rewriter { quantization { symmetric: true } }",
                                              "graph_rewriter.quantization.symmetric", "True"),
}
SUPPORTED = {"model.ssd.image_resizer": "fixed_shape_resizer", "model.ssd.box_coder": "faster_rcnn_box_coder",
             "model.ssd.box_predictor": "convolutional_box_predictor",
             "model.ssd.anchor_generator": "ssd_anchor_generator"}
for parent, names in (("model.ssd.image_resizer", ("keep_aspect_ratio_resizer", "identity_resizer",
                                                   "conditional_shape_resizer", "pure_tf_resizer")),
                      ("model.ssd.box_coder", ("mean_stddev_box_coder", "square_box_coder", "keypoint_box_coder")),
                      ("model.ssd.box_predictor", ("mask_rcnn_box_predictor", "rfcn_box_predictor")),
                      ("model.ssd.anchor_generator", ("grid_anchor_generator", "flexible_grid_anchor_generator"))):
    for name in names:
        # In place of the supported alternative (whose settings it does not know, and skips).
        REFUSED[f"{parent}.{name}"] = ((MOBILENET, SUPPORTED[parent], name), "", parent, repr(name))
# The layer settings of both box predictors and the feature extractor: only what is built is accepted.
for predictor, base in (("feature_extractor", MOBILENET), ("box_predictor.convolutional_box_predictor", MOBILENET),
                        ("box_predictor.weight_shared_convolutional_box_predictor", RESNET)):
    field = f"model.ssd.{predictor}.conv_hyperparams"
    nest = "".join(f"{part} {{ " for part in predictor.split("."))
    close = " }" * len(predictor.split("."))
    REFUSED[f"{field}.activation"] = (base, f"model {{ ssd {{ {nest}conv_hyperparams {{ activation: RELU }} {close} }} }}",
                                      f"{field}.activation", "'RELU'")
    for setting in ("scale", "center"):
        REFUSED[f"{field}.batch_norm.{setting}"] = (
            base, f"model {{ ssd {{ {nest}conv_hyperparams {{ batch_norm {{ {setting}: false }} }} {close} }} }}",
            f"{field}.batch_norm.{setting}", "False")
for predictor, base, value in (("convolutional_box_predictor", MOBILENET, 5),
                               ("weight_shared_convolutional_box_predictor", RESNET, 5)):
    field = f"model.ssd.box_predictor.{predictor}.box_code_size"
    REFUSED[field] = (base, f"model {{ ssd {{ box_predictor {{ {predictor} {{ box_code_size: {value} }} }} }} }}",
                      field, str(value))
for setting in ("share_prediction_tower", "use_depthwise"):
    REFUSED[f"model.ssd.box_predictor.weight_shared_convolutional_box_predictor.{setting}"] = (
        RESNET, f"model {{ ssd {{ box_predictor {{ weight_shared_convolutional_box_predictor {{ {setting}: true }} }} }} }}",
        "model.ssd.box_predictor.weight_shared_convolutional_box_predictor", "'share_prediction_tower/use_depthwise'")
REFUSED["model.ssd.box_predictor.weight_shared_convolutional_box_predictor.depth"] = (
    RESNET, "model { ssd { box_predictor { weight_shared_convolutional_box_predictor { depth: 0 } } } }",
    "model.ssd.box_predictor.weight_shared_convolutional_box_predictor.depth", "0")
for setting in ("height_stride", "width_stride", "height_offset", "width_offset"):
    field = f"model.ssd.anchor_generator.ssd_anchor_generator.{setting}"
    REFUSED[field] = (MOBILENET, f"model {{ ssd {{ anchor_generator {{ ssd_anchor_generator {{ {setting}: 16 }} }} }} }}",
                      field, "[16]")


def base_text(base) -> str:
    """A test config's text; (name, old, new) renames its `old {` block to `new {`."""
    if not base:
        return ""
    name, old, new = base if isinstance(base, tuple) else (base, None, None)
    with open(testing.testdata(name)) as config:
        text = config.read()
    if old:
        assert f"{old} {{" in text, (name, old)
        text = text.replace(f"{old} {{", f"{new} {{", 1)
    return text


def schema_fields(message=None, prefix: str = "") -> set[str]:
    """Every field path of our schema, messages and their fields alike."""
    message = message or pipeline_schema.TrainEvalPipelineConfig.DESCRIPTOR
    paths = set()
    for field in message.fields:
        path = prefix + field.name
        paths.add(path)
        if field.message_type is not None:
            paths |= schema_fields(field.message_type, path + ".")
    return paths


INT32_MAX = 2 ** 31 - 1


NUMERIC = testing.numeric_fields()


def range_key(field: FieldDescriptor) -> str:
    return f"{field.containing_type.name}.{field.name}"


def is_integer(path: str) -> bool:
    return NUMERIC[path].cpp_type not in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


def numeric_base(path: str) -> str:
    """A config in which the field is read: ResNet FPN for its own blocks, the quantized MobileNet otherwise."""
    return RESNET if any(part in path for part in ("fpn", "multiscale", "weight_shared")) else MOBILENET


def override(path: str, settings: str) -> str:
    """Text that sets `settings` ("leaf: value ...") in the message holding the field at `path`."""
    parents = path.split(".")[:-1]
    return "".join(f"{parent} {{ " for parent in parents) + settings + " }" * len(parents)


def _float32(value: float) -> float:
    return float(np.float32(value))


def _next_float32(value: float, direction: float) -> float:
    return float(np.nextafter(np.float32(value), np.float32(direction)))


def _outside(value_range: pipeline_schema.Range, value: float) -> bool:
    if value_range.zero_disables and value == 0:
        return False
    return (value < value_range.low or (value == value_range.low and value_range.low_excluded)
            or (value_range.high is not None and value > value_range.high))


def refused_values(path: str) -> list[str]:
    """Values the field must refuse: not finite, negative, huge, and just outside its range."""
    value_range = pipeline_schema.RANGES[range_key(NUMERIC[path])]
    values = ["nan", "inf", "-inf", "-1", str(10 ** 18)]
    candidates = ["0", "1e+30", str(INT32_MAX)]
    if is_integer(path):
        values += [str(value_range.low - 1)] + ([str(value_range.high + 1)] if value_range.high is not None else [])
    else:
        low = _float32(value_range.low)
        values.append(repr(low if value_range.low_excluded else _next_float32(low, -math.inf)))
        values.append(repr(_next_float32(value_range.high, math.inf)))
    values += [value for value in candidates if _outside(value_range, float(value))]
    return list(dict.fromkeys(value for value in values if value != "0" or not value_range.zero_disables))


def valid_edges(path: str) -> list[str]:
    """The ends of the field's range (the lower one only for a field that must not exceed another)."""
    value_range = pipeline_schema.RANGES[range_key(NUMERIC[path])]
    if is_integer(path):
        edges = [value_range.low, INT32_MAX if value_range.high is None else value_range.high]
    else:
        low = _float32(value_range.low)
        edges = [_next_float32(low, math.inf) if value_range.low_excluded else low, _float32(value_range.high)]
    edges = edges[:1] if value_range.not_above else edges
    return [repr(edge) for edge in edges] + (["0"] if value_range.zero_disables else [])


def is_int32(text: str) -> bool:
    return re.fullmatch(r"-?\d+", text) is not None and -2 ** 31 <= int(text) <= INT32_MAX


def parse_numeric(path: str, settings: str):
    return pipeline_config.parse(base_text(numeric_base(path)), "pipeline.config", override(path, settings))


def range_error(path: str, message: str):
    """The "<path> = <value>: must ..." line of a range error, as a regex match."""
    return re.search(re.escape(path) + r"(?:\[\d+\])? = (\S+): must", message)


class ConfigFieldsTest(parameterized.TestCase):

    @parameterized.parameters(*HONOURED)
    def test_honoured_field_reaches_the_model_spec(self, field):
        base, override, value, expected = HONOURED[field]
        spec = pipeline_config.parse(base_text(base), "pipeline.config", override)
        self.assertEqual(value(spec), expected, field)

    @parameterized.parameters(*REFUSED)
    def test_refused_field_is_named_with_its_value(self, field):
        base, override, named, value = REFUSED[field]
        with self.assertRaises(ConfigError) as raised:
            pipeline_config.parse(base_text(base), "pipeline.config", override)
        self.assertIn(f"{named}: {value}", str(raised.exception))

    def test_every_numeric_field_has_a_range(self):
        keys = {range_key(field) for field in NUMERIC.values()}
        self.assertEqual(sorted(keys - set(pipeline_schema.RANGES)), [], "numeric fields without a range")
        self.assertEqual(sorted(set(pipeline_schema.RANGES) - keys), [], "ranges of no numeric field")

    def test_schema_defaults_are_in_range(self):
        for path, field in NUMERIC.items():
            if field.has_default_value:
                self.assertFalse(_outside(pipeline_schema.RANGES[range_key(field)], field.default_value), path)

    @parameterized.parameters(*NUMERIC)
    def test_value_out_of_range_is_refused_naming_the_field(self, field):
        leaf = field.rsplit(".", 1)[-1]
        for value in refused_values(field):
            with self.assertRaises(ConfigError, msg=f"{field}: {value}") as raised:
                parse_numeric(field, f"{leaf}: {value}")
            message = str(raised.exception)
            if is_integer(field) and not is_int32(value):  # refused as the text is parsed
                self.assertIn(f"{leaf}: {value}", message)
                continue
            match = range_error(field, message)
            self.assertIsNotNone(match, (value, message))
            shown, expected = float(match.group(1)), _float32(float(value))
            self.assertTrue(math.isnan(shown) if math.isnan(expected)
                            else math.isclose(shown, expected, rel_tol=1e-6), (value, message))

    @parameterized.parameters(*NUMERIC)
    def test_edges_of_the_range_pass(self, field):
        leaf = field.rsplit(".", 1)[-1]
        for value in valid_edges(field):
            try:
                parse_numeric(field, f"{leaf}: {value}")
            except ConfigError as error:  # refused for another reason (a support rule), not for its range
                self.assertIsNone(range_error(field, str(error)), (value, str(error)))

    @parameterized.parameters(*[path for path, field in NUMERIC.items()
                                if pipeline_schema.RANGES[range_key(field)].not_above])
    def test_ordered_pair_out_of_order_is_refused(self, field):
        value_range = pipeline_schema.RANGES[range_key(NUMERIC[field])]
        parent, leaf = field.rsplit(".", 1)
        partner = value_range.not_above
        settings = f"{leaf}: {value_range.high} {partner}: {valid_edges(f'{parent}.{partner}')[0]}"
        with self.assertRaises(ConfigError) as raised:
            parse_numeric(field, settings)
        self.assertRegex(str(raised.exception), re.escape(field) + r" = \S+: must not exceed " + partner)

    def test_all_violations_are_reported_at_once(self):
        with self.assertRaises(ConfigError) as raised:
            pipeline_config.parse(base_text(SSDLITE), "pipeline.config",
                                  "model { ssd { image_resizer { fixed_shape_resizer { height: 0 width: -300 } } "
                                  "anchor_generator { ssd_anchor_generator { min_scale: -0.2 aspect_ratios: -2.0 } } "
                                  "box_coder { faster_rcnn_box_coder { y_scale: 0.0 } } } }")
        message = str(raised.exception)
        self.assertIn("pipeline.config: 5 values are out of range:", message)
        for named in ("fixed_shape_resizer.height = 0", "fixed_shape_resizer.width = -300", "min_scale = -0.2",
                      "aspect_ratios[5] = -2", "y_scale = 0"):
            self.assertIn(named, message)

    def test_every_schema_field_has_a_case(self):
        cased = set(HONOURED) | set(REFUSED) | set(pipeline_config.NOT_IN_THE_GRAPH)
        missing = sorted(path for path in schema_fields() if path not in cased
                         and not any(other.startswith(path + ".") for other in cased))
        self.assertEqual(missing, [])


if __name__ == "__main__":
    absltest.main()
