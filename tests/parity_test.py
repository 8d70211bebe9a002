"""The .tflite computes what the frozen export graph computes.

Reference runtime: ai-edge-litert (the maintained TFLite runtime; TF's
tf.lite.Interpreter is deprecated). The frozen graph's raw outputs are
decoded and suppressed by postprocess_reference (NumPy, written from the
published box-coder and NMS definitions) and compared with the model's.

Float models must agree to 1e-4 on boxes and scores, with the same classes.
Quantized models are compared where quantization happens: the uint8 box
codes and class scores that enter TFLite_Detection_PostProcess, against the
FakeQuant graph. TFLite's integer kernels round each layer's output once
where the FakeQuant graph rounds float math, so each quantized layer may be
off by up to half a step, and those errors add up along the network: the
tolerance is half an output step per FakeQuant activation on the longest
path from input to output. The decoding and NMS after that point are the
same float code as in the float models, already checked to 1e-4.
"""

import numpy as np
import tensorflow as tf
from absl.testing import absltest, parameterized
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import postprocess_reference
import testing
from ssd_tflite import detection, pipeline_config
from ssd_tflite.images import load_image, resized_pixels

# Not ssd_resnet50_fpn_calibrated_uint8_tflite: its synthetic weights feed the FPN smoothing layers
# inputs of +-400 for a 0..6 output range, so a 1-step rounding difference there becomes up to 255
# steps (measured layer by layer: <= 10 steps through the backbone, 255 after fpn/smoothing_2).
# The half-step-per-layer bound assumes layers that do not amplify, which random weights break.
AMPLIFYING = "ssd_resnet50_fpn_calibrated_uint8_tflite"


def has_fake_quant_ranges(model: dict) -> bool:
    """Whether the model's graph carries FakeQuant ranges: a quantization-aware checkpoint's, or calibrated."""
    return model["calibrated"] or pipeline_config.read(testing.runfile(model["pipeline_config"])).quantized


FLOAT_MODELS = tuple(name for name, model in testing.models().items() if model["inference_type"] == "FLOAT")
QUANTIZED_MODELS = tuple(name for name, model in testing.models().items()
                         if model["inference_type"] == "QUANTIZED_UINT8" and has_fake_quant_ranges(model)
                         and name != AMPLIFYING)
IMAGES = ("chelsea.png", "coffee.png")
RAW_OUTPUTS = ("raw_outputs/box_encodings:0", "raw_outputs/class_predictions:0", "anchors:0")


class FrozenGraph:
    """The export graph without its custom op, runnable in TensorFlow."""

    def __init__(self, path: str):
        graph_def = tf.compat.v1.GraphDef()
        with open(path, "rb") as graph_file:
            graph_def.ParseFromString(graph_file.read())
        (self.postprocess,) = [node for node in graph_def.node if node.op == "TFLite_Detection_PostProcess"]
        self.graph_def = tf.compat.v1.GraphDef()
        self.graph_def.node.extend(node for node in graph_def.node if node is not self.postprocess)
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(self.graph_def, name="")
        self.session = tf.compat.v1.Session(graph=self.graph)

    def raw_outputs(self, normalized_input: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(RAW_OUTPUTS), {"normalized_input_image_tensor:0": normalized_input})

    def attr(self, name: str):
        value = self.postprocess.attr[name]
        return value.f if value.WhichOneof("value") == "f" else value.i

    def longest_fake_quant_path(self) -> int:
        """Most FakeQuant activations (full range) met on one path from the input to an output."""
        nodes = {node.name: node for node in self.graph_def.node}
        depth: dict[str, int] = {}

        def visit(name: str) -> int:
            name = name.lstrip("^").split(":")[0]
            if name not in depth:
                node = nodes[name]
                own = int(node.op == "FakeQuantWithMinMaxVars" and not node.attr["narrow_range"].b)
                depth[name] = own + max((visit(source) for source in node.input), default=0)
            return depth[name]

        return max(visit(name.split(":")[0]) for name in RAW_OUTPUTS[:2])


def detector(target: str) -> detection.Detector:
    return detection.open_detector(testing.model_file(target))


class ParityTest(parameterized.TestCase):

    def test_the_model_left_out_exists(self):
        self.assertIn(AMPLIFYING, testing.models())

    @parameterized.product(target=FLOAT_MODELS, image=IMAGES)
    def test_float_model_matches_frozen_graph(self, target, image):
        model = detector(target)
        graph = FrozenGraph(testing.model_file(target, "graph"))
        tensor = model.input_tensor(load_image(testing.testdata(image)))
        encodings, scores, anchors = graph.raw_outputs(tensor)
        boxes = postprocess_reference.decode(encodings[0], anchors, [graph.attr(key) for key in
                                                                      ("y_scale", "x_scale", "h_scale", "w_scale")])
        expected_boxes, expected_classes, expected_scores = postprocess_reference.fast_nms(
            boxes, scores[0], graph.attr("nms_score_threshold"), graph.attr("nms_iou_threshold"),
            graph.attr("max_detections"))
        tflite_boxes, tflite_classes, tflite_scores, count = model.raw_outputs(tensor)
        found = int(count[0])
        self.assertEqual(found, len(expected_scores))
        np.testing.assert_array_equal(tflite_classes[0, :found].astype(int), expected_classes)
        np.testing.assert_allclose(tflite_scores[0, :found], expected_scores, atol=1e-4)
        np.testing.assert_allclose(tflite_boxes[0, :found], expected_boxes, atol=1e-4)

    @parameterized.parameters(*IMAGES)
    def test_resnet_fpn_through_detect_matches_graph_fed_mean_subtracted_pixels(self, image):
        """The embedded normalization is exact: detect's (pixel - 128) / 128 input gives the
        outputs of the classic graph (no embedding) fed with pixel - channel means."""
        model = detector("ssd_resnet50_fpn_tflite")
        classic = FrozenGraph(testing.runfile("tests/resnet_fpn_classic_graph/tflite_graph.pb"))
        picture = load_image(testing.testdata(image))
        pixels = resized_pixels(picture, 640, 640)[np.newaxis]
        encodings, scores, anchors = classic.raw_outputs(pixels - np.array([123.68, 116.779, 103.939], np.float32))
        boxes = postprocess_reference.decode(encodings[0], anchors, (10.0, 10.0, 5.0, 5.0))
        expected_boxes, expected_classes, expected_scores = postprocess_reference.fast_nms(
            boxes, scores[0], classic.attr("nms_score_threshold"), classic.attr("nms_iou_threshold"), 10)
        tflite_boxes, tflite_classes, tflite_scores, count = model.raw_outputs(model.input_tensor(picture))
        found = int(count[0])
        self.assertEqual(found, len(expected_scores))
        np.testing.assert_array_equal(tflite_classes[0, :found].astype(int), expected_classes)
        np.testing.assert_allclose(tflite_scores[0, :found], expected_scores, atol=1e-4)
        np.testing.assert_allclose(tflite_boxes[0, :found], expected_boxes, atol=1e-4)

    @parameterized.product(target=QUANTIZED_MODELS, image=IMAGES)
    def test_quantized_model_matches_fake_quant_graph(self, target, image):
        graph = FrozenGraph(testing.model_file(target, "graph"))
        # Without the XNNPACK delegate, which fuses the tensors compared here away.
        interpreter = Interpreter(model_path=testing.model_file(target),
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                                  experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        (model_input,) = interpreter.get_input_details()
        scale, zero_point = model_input["quantization"]
        pixels = detector(target).input_tensor(load_image(testing.testdata(image)))
        interpreter.set_tensor(model_input["index"], pixels)
        interpreter.invoke()
        expected = graph.raw_outputs((pixels.astype(np.float32) - zero_point) * scale)
        steps = graph.longest_fake_quant_path() / 2
        for position, (name, reference) in enumerate(zip(("box encodings", "class scores"), expected)):
            quantized = self.op_input_before_dequantize(interpreter, position)
            step, offset = quantized["quantization"]
            actual = (interpreter.get_tensor(quantized["index"]).astype(np.float32) - offset) * step
            error = np.abs(actual - reference).max()
            self.assertLessEqual(error, steps * step, f"{name}: {error / step:.1f} steps, allowed {steps}")

    def op_input_before_dequantize(self, interpreter: Interpreter, position: int) -> dict:
        """The uint8 tensor that (after Dequantize) is input `position` of the custom op."""
        ops = interpreter._get_ops_details()  # noqa: SLF001 (no public API lists ops)
        tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
        (postprocess,) = [op for op in ops if op["op_name"] == "TFLite_Detection_PostProcess"]
        wanted = postprocess["inputs"][position]
        producers = [op for op in ops if wanted in op["outputs"]]
        if producers and producers[0]["op_name"] == "DEQUANTIZE":
            wanted = producers[0]["inputs"][0]
        self.assertEqual(tensors[wanted]["dtype"], np.uint8, tensors[wanted]["name"])
        return tensors[wanted]


if __name__ == "__main__":
    absltest.main()
