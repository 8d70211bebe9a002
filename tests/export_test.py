"""The export against real checkpoint layouts, the published anchor formulas, and bad input."""

import os
import re
from typing import Optional

import numpy as np
import tensorflow as tf
from absl.testing import absltest, parameterized

import anchor_reference
import testing
from ssd_tflite import calibration, export, pipeline_config, preprocessing
from ssd_tflite.checkpoint import CheckpointSource
from ssd_tflite.errors import CheckpointError, ConfigError, InputError, UserError
from ssd_tflite.tflite_graph import PostProcessingFlags

TRAINABLE = ("/weights", "/depthwise_weights", "/biases", "/gamma", "/beta")
NOT_MODEL_STATE = re.compile(r"(^global_step$|^fake_quantization_step$|/(RMSProp|RMSProp_1|Momentum|biased|local_step)$)")


MOVING_AVERAGE = "/ExponentialMovingAverage"


def expected_reads(manifest: dict, use_moving_averages: bool) -> set[str]:
    """What a correct export reads: model variables, moving-average shadows in place of trainables."""
    names = {name for name in manifest if not NOT_MODEL_STATE.search(name)}
    shadows = {name for name in names if name.endswith(MOVING_AVERAGE)}
    if not use_moving_averages:
        return names - shadows
    return shadows | {name for name in names - shadows if not name.endswith(TRAINABLE)}


class ReferenceLayoutTest(parameterized.TestCase):
    """Checkpoints with exactly the variables of real zoo and fine-tuned checkpoints."""

    def export(self, model: str, variables: Optional[dict] = None, use_moving_averages: Optional[bool] = None):
        """The export of `model` from a checkpoint of `variables` (default: its manifest's), verified."""
        manifest = testing.read_manifest(model) if variables is None else variables
        spec = pipeline_config.read(testing.testdata(model + ".pipeline.config"))
        prefix = os.path.join(self.create_tempdir().full_path, "model.ckpt")
        testing.write_manifest_checkpoint(prefix, manifest)
        source = CheckpointSource(prefix, spec.use_moving_averages if use_moving_averages is None
                                  else use_moving_averages)
        exported = export.build_graph(spec, source, PostProcessingFlags())
        source.verify(model)
        return manifest, spec, source, exported

    @parameterized.parameters(*testing.REFERENCE_MODELS)
    def test_reads_exactly_the_model_variables(self, model):
        """verify() passes on the real layout (every model variable is used) and on a checkpoint of only
        what a correct export reads (nothing else is needed: it would be missing)."""
        manifest, spec, _, _ = self.export(model)
        reads = expected_reads(manifest, spec.use_moving_averages)
        self.export(model, {name: manifest[name] for name in reads})
        if spec.use_moving_averages:  # verify() counts no shadow as a model variable: each must still be read
            raw = {name.removesuffix(MOVING_AVERAGE): manifest[name] for name in reads}
            self.assertLen(raw, len(reads))
            self.export(model, raw, use_moving_averages=False)

    @parameterized.parameters(
        ("ssd_mobilenet_v1_quantized_zoo", [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], 1917),
        ("ssd_mobilenet_v2_quantized_zoo", [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], 1917),
        ("ssdlite_mobilenet_v2_zoo", [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], 1917),
        ("ssd_resnet50_v1_fpn_finetune_11class", [(80, 80), (40, 40), (20, 20), (10, 10), (5, 5)], 51150),
    )
    def test_feature_maps_and_anchors(self, model, feature_maps, anchor_count):
        _, spec, _, exported = self.export(model)
        self.assertEqual(exported.feature_map_shapes, feature_maps)
        self.assertEqual(exported.anchors.shape, (anchor_count, 4))
        graph_anchors = [node for node in exported.graph_def.node if node.name == "anchors"]
        self.assertLen(graph_anchors, 1)
        if isinstance(spec.anchors, pipeline_config.MultiscaleAnchors):
            reference = anchor_reference.retinanet_anchors(
                spec.anchors.min_level, spec.anchors.max_level, spec.anchors.anchor_scale,
                spec.anchors.aspect_ratios, spec.anchors.scales_per_octave, spec.height)
        else:
            reference = anchor_reference.ssd_anchors(spec.anchors.min_scale, spec.anchors.max_scale,
                                                     spec.anchors.aspect_ratios, [size for size, _ in feature_maps])
        np.testing.assert_allclose(exported.anchors, np.array(reference, np.float32), atol=1e-6)

    def test_graph_contract(self):
        _, spec, _, exported = self.export("ssd_mobilenet_v1_quantized_zoo")
        nodes = {node.name: node for node in exported.graph_def.node}
        image = nodes["normalized_input_image_tensor"]
        self.assertEqual(image.op, "Placeholder")
        self.assertEqual([dim.size for dim in image.attr["shape"].shape.dim], [1, 300, 300, 3])
        post = nodes["TFLite_Detection_PostProcess"]
        self.assertEqual(list(post.input), ["raw_outputs/box_encodings", "raw_outputs/class_predictions", "anchors"])
        self.assertNotIn("_output_types", post.attr)
        self.assertEqual(post.attr["num_classes"].i, 90)
        self.assertEqual(post.attr["max_detections"].i, 10)
        self.assertEqual([post.attr[key].f for key in ("y_scale", "x_scale", "h_scale", "w_scale")], [10, 10, 5, 5])
        self.assertAlmostEqual(post.attr["nms_iou_threshold"].f, 0.6, places=6)
        self.assertAlmostEqual(post.attr["nms_score_threshold"].f, spec.nms_score_threshold, places=9)
        self.assertEqual(nodes["Postprocessor/convert_scores"].op, "Sigmoid")
        fake_quants = [node for node in exported.graph_def.node if node.op == "FakeQuantWithMinMaxVars"]
        self.assertLen(fake_quants, 94)  # as in the zoo's quantized eval graph


class CalibrationTest(absltest.TestCase):
    """Float checkpoints exported with activation ranges measured on images."""

    IMAGES = ("chelsea.png", "coffee.png")

    def export(self, model: str, embed_input_normalization: bool = False):
        prefix = os.path.join(self.create_tempdir().full_path, "model.ckpt")
        testing.write_manifest_checkpoint(prefix, testing.read_manifest(model))
        output = self.create_tempdir().full_path
        exported = export.export_tflite_graph(
            testing.testdata(model + ".pipeline.config"), prefix, output, write_pbtxt=False,
            embed_input_normalization=embed_input_normalization,
            calibration_images=[testing.testdata(image) for image in self.IMAGES])
        return {node.name: node for node in exported.graph_def.node}

    @staticmethod
    def activation_ranges(nodes: dict) -> dict[str, tuple[float, float]]:
        """(min, max) of every full-range FakeQuant, by the name of the tensor it quantizes."""
        ranges = {}
        for node in nodes.values():
            if node.op == "FakeQuantWithMinMaxVars" and not node.attr["narrow_range"].b:
                low, high = (tf.make_ndarray(nodes[name].attr["value"].tensor) for name in node.input[1:])
                ranges[node.input[0]] = (float(low), float(high))
        return ranges

    def test_float_twin_of_the_quantized_zoo_model_gets_its_fake_quant_placement(self):
        nodes = self.export("ssd_mobilenet_v1_float_zoo")
        fake_quants = [node for node in nodes.values() if node.op == "FakeQuantWithMinMaxVars"]
        self.assertLen(fake_quants, 94)  # as in the zoo's quantized eval graph of the same model
        for tensor, (low, high) in self.activation_ranges(nodes).items():
            self.assertLessEqual(low, 0.0, tensor)
            self.assertGreater(high, low, tensor)

    def test_ranges_are_measured_and_shared_heads_cover_every_level(self):
        nodes = self.export("ssd_resnet50_v1_fpn_finetune_11class", embed_input_normalization=True)
        ranges = self.activation_ranges(nodes)
        # Per-level class logits of the weight-shared head, all quantized with the head's one range.
        logits = [name for name in ranges if re.fullmatch(r"WeightSharedConvolutionalBoxPredictor(_\d+)?/"
                                                          r"ClassPredictor/BiasAdd(_\d+)?", name)]
        self.assertLen(logits, 5)
        self.assertLen({ranges[name] for name in logits}, 1)
        graph = tf.Graph()
        with graph.as_default():
            tf.import_graph_def(export_graph_without_postprocessing(nodes), name="")
        normalization = preprocessing.graph_input("ssd_resnet50_v1_fpn", embedded=True)
        images = calibration.load_images([testing.testdata(image) for image in self.IMAGES], 640, 640, normalization)
        with tf.compat.v1.Session(graph=graph) as session:
            values = [session.run([name + ":0" for name in logits], {"normalized_input_image_tensor:0": image[None]})
                      for image in images]
        low, high = ranges[logits[0]]
        measured_low = min(value.min() for per_image in values for value in per_image)
        measured_high = max(value.max() for per_image in values for value in per_image)
        # The graph that was measured had float activations; this one quantizes those before the
        # head, so its logits may differ from the measured ones by a few output steps.
        step = (high - low) / 255
        self.assertAlmostEqual(measured_low, low, delta=4 * step)
        self.assertAlmostEqual(measured_high, high, delta=4 * step)
        # The embedded normalization's range is exact: pixels 0..255 minus the channel means.
        (normalized,) = [name for name in ranges if name.startswith("Preprocessor/")]
        np.testing.assert_allclose(ranges[normalized], (-123.68, 255 - 103.939), rtol=1e-5)


def export_graph_without_postprocessing(nodes: dict):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.node.extend(node for node in nodes.values() if node.op != "TFLite_Detection_PostProcess")
    return graph_def


class RefusalTest(absltest.TestCase):
    """Bad input is refused with the field or variable at fault, and nothing is written."""

    def setUp(self):
        super().setUp()
        self.workdir = self.create_tempdir().full_path
        self.output = os.path.join(self.workdir, "out")

    def config_with(self, model: str, old: str, new: str) -> str:
        with open(testing.testdata(model + ".pipeline.config")) as original:
            text = original.read()
        self.assertIn(old, text)
        path = os.path.join(self.workdir, "pipeline.config")
        with open(path, "w") as changed:
            changed.write(text.replace(old, new, 1))
        return path

    def checkpoint(self, model: str, drop: str = "", reshape: str = "") -> str:
        manifest = testing.read_manifest(model)
        if drop:
            del manifest[drop]
        if reshape:
            manifest[reshape] = ((7,), "float32")
        prefix = os.path.join(self.workdir, "model.ckpt")
        testing.write_manifest_checkpoint(prefix, manifest)
        return prefix

    def assert_refused(self, error_type, config: str, prefix: str, *fragments: str):
        with self.assertRaises(error_type) as raised:
            export.export_tflite_graph(config, prefix, self.output)
        for fragment in fragments:
            self.assertIn(fragment, str(raised.exception))
        self.assertFalse(os.path.exists(self.output), "nothing may be written on failure")

    def test_syntax_error_names_file_and_line(self):
        config = self.config_with("ssdlite_mobilenet_v2_zoo", "num_classes: 90", "num_classes: ninety")
        self.assert_refused(ConfigError, config, "unused", config + ":3:")

    def test_faster_rcnn_is_refused(self):
        config = self.config_with("ssdlite_mobilenet_v2_zoo", "  ssd {", "  faster_rcnn {")
        self.assert_refused(ConfigError, config, "unused", "model", "'faster_rcnn'")

    def test_unknown_feature_extractor_is_refused(self):
        config = self.config_with("ssdlite_mobilenet_v2_zoo", '"ssd_mobilenet_v2"', '"ssd_inception_v2"')
        self.assert_refused(ConfigError, config, "unused", "model.ssd.feature_extractor.type", "'ssd_inception_v2'")

    def test_unknown_anchor_generator_is_refused(self):
        config = self.config_with("ssdlite_mobilenet_v2_zoo", "ssd_anchor_generator {", "grid_anchor_generator {")
        self.assert_refused(ConfigError, config, "unused", "model.ssd.anchor_generator", "'grid_anchor_generator'")

    def test_missing_checkpoint_is_refused(self):
        config = testing.testdata("ssdlite_mobilenet_v2_zoo.pipeline.config")
        self.assert_refused(CheckpointError, config, os.path.join(self.workdir, "nothing.ckpt"), "nothing.ckpt")

    def test_missing_variable_is_named_with_shape(self):
        name = "FeatureExtractor/MobilenetV2/expanded_conv_3/expand/weights"
        prefix = self.checkpoint("ssdlite_mobilenet_v2_zoo", drop=name)
        config = testing.testdata("ssdlite_mobilenet_v2_zoo.pipeline.config")
        self.assert_refused(CheckpointError, config, prefix, "1 variable(s) the config needs are missing", name + " [1, 1, 24, 144]")

    def test_shape_mismatch_is_named(self):
        name = "FeatureExtractor/MobilenetV2/Conv/BatchNorm/beta"
        prefix = self.checkpoint("ssdlite_mobilenet_v2_zoo", reshape=name)
        config = testing.testdata("ssdlite_mobilenet_v2_zoo.pipeline.config")
        self.assert_refused(CheckpointError, config, prefix, name, "[7]", "[32]")

    def test_other_num_classes_is_diagnosed(self):
        prefix = self.checkpoint("ssdlite_mobilenet_v2_zoo")
        config = self.config_with("ssdlite_mobilenet_v2_zoo", "num_classes: 90", "num_classes: 20")
        self.assert_refused(CheckpointError, config, prefix, "BoxPredictor_0/ClassPredictor/weights", "another num_classes")

    def test_checkpoint_of_another_architecture_is_refused(self):
        prefix = self.checkpoint("ssd_mobilenet_v1_float_zoo")
        config = testing.testdata("ssdlite_mobilenet_v2_zoo.pipeline.config")
        self.assert_refused(CheckpointError, config, prefix, "FeatureExtractor/MobilenetV2/Conv/weights",
                            "FeatureExtractor/MobilenetV1/Conv2d_0/weights", "another architecture")

    def test_calibrating_a_quantization_aware_checkpoint_is_refused(self):
        prefix = self.checkpoint("ssd_mobilenet_v1_quantized_zoo")
        config = testing.testdata("ssd_mobilenet_v1_quantized_zoo.pipeline.config")
        with self.assertRaisesRegex(UserError, "--calibration_images: .*graph_rewriter.quantization"):
            export.export_tflite_graph(config, prefix, self.output, calibration_images=[testing.testdata("chelsea.png")])
        self.assertFalse(os.path.exists(self.output))

    def test_unreadable_calibration_image_is_named(self):
        prefix = self.checkpoint("ssdlite_mobilenet_v2_zoo")
        config = testing.testdata("ssdlite_mobilenet_v2_zoo.pipeline.config")
        for image, message in ((config, "not an image"), (os.path.join(self.workdir, "gone.jpg"), "no such image")):
            with self.assertRaisesRegex(InputError, re.escape(image) + ": " + message):
                export.export_tflite_graph(config, prefix, self.output, calibration_images=[image])
            self.assertFalse(os.path.exists(self.output))

    def test_float_checkpoint_for_quantized_config_is_refused(self):
        prefix = self.checkpoint("ssd_mobilenet_v1_float_zoo")
        config = testing.testdata("ssd_mobilenet_v1_quantized_zoo.pipeline.config")
        self.assert_refused(CheckpointError, config, prefix, "weights_quant/min")


if __name__ == "__main__":
    absltest.main()
