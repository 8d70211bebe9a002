"""Every field of our pipeline.config schema is honoured, refused by name, or shapes no graph.

Each field gets a case: an honoured field's new value must reach the model
spec the graph is built from; a refused value must end in a ConfigError that
names the field and the value. `test_every_schema_field_has_a_case` walks
the schema, so a field added without a case fails.
"""

from absl.testing import absltest, parameterized

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
    "model.ssd.num_classes": (MOBILENET, "model { ssd { num_classes: 0 } }", "model.ssd.num_classes", "0"),
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

    def test_every_schema_field_has_a_case(self):
        cased = set(HONOURED) | set(REFUSED) | set(pipeline_config.NOT_IN_THE_GRAPH)
        missing = sorted(path for path in schema_fields() if path not in cased
                         and not any(other.startswith(path + ".") for other in cased))
        self.assertEqual(missing, [])


if __name__ == "__main__":
    absltest.main()
