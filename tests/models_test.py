"""Every //models target is a working detect.tflite with the classic contract."""

import ast
import json
from typing import Optional

import flatbuffers.flexbuffers
import numpy as np
from absl.testing import absltest, parameterized
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import schema_py_generated as schema

import anchor_reference
import testing
from ssd_tflite import pipeline_config


def activation_ranges(model: dict, spec: pipeline_config.ModelSpec) -> Optional[str]:
    """Where a uint8 model's activation ranges come from, as its contract states it; None for a float one."""
    if model["inference_type"] == "FLOAT":
        return None
    if spec.quantized:
        return "checkpoint (quantization-aware training)"
    return "calibrated on images" if model["calibrated"] else "default " + "..".join(model["default_ranges"])


OUTPUTS = [("TFLite_Detection_PostProcess", [1, 10, 4]), ("TFLite_Detection_PostProcess:1", [1, 10]),
           ("TFLite_Detection_PostProcess:2", [1, 10]), ("TFLite_Detection_PostProcess:3", [1])]


def spec(target: str) -> pipeline_config.ModelSpec:
    return pipeline_config.read(testing.model_file(target, "pipeline_config"))


def quantized(target: str) -> bool:
    return testing.models()[target]["inference_type"] == "QUANTIZED_UINT8"


class ModelContractTest(parameterized.TestCase):

    def test_the_manifest_lists_every_model_of_the_package(self):
        """model_manifest sees the models declared before it: it must be the last call of models/BUILD."""
        with open(testing.runfile("models/BUILD")) as build_file:
            calls = [statement.value.func.id for statement in ast.parse(build_file.read()).body
                     if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)]
        self.assertEqual(calls[-1], "model_manifest", "models/BUILD: call model_manifest after every model")
        self.assertEqual(calls.count("ssd_tflite_model"), len(testing.models()), "models/manifest.json misses models")

    @parameterized.parameters(*testing.models())
    def test_contract_and_inference(self, target):
        side = spec(target).height
        interpreter = Interpreter(model_path=testing.model_file(target))
        interpreter.allocate_tensors()
        (image,) = interpreter.get_input_details()
        self.assertEqual(image["name"], "normalized_input_image_tensor")
        self.assertEqual(image["shape"].tolist(), [1, side, side, 3])
        if quantized(target):
            self.assertEqual(image["dtype"], np.uint8)
            scale, zero_point = image["quantization"]
            self.assertAlmostEqual(scale, 1 / 128)
            self.assertEqual(zero_point, 128)
        else:
            self.assertEqual(image["dtype"], np.float32)
        outputs = interpreter.get_output_details()
        self.assertEqual([(out["name"], out["shape"].tolist()) for out in outputs], OUTPUTS)
        self.assertTrue(all(out["dtype"] == np.float32 for out in outputs))

        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (1, side, side, 3))
        interpreter.set_tensor(image["index"], pixels.astype(np.uint8) if quantized(target)
                               else ((pixels - 128) / 128).astype(np.float32))
        interpreter.invoke()
        boxes, classes, scores, count = (interpreter.get_tensor(out["index"]) for out in outputs)
        self.assertTrue(0 < count[0] <= 10)
        valid = int(count[0])
        self.assertTrue(np.all((scores[0, :valid] >= 0) & (scores[0, :valid] <= 1)))
        self.assertTrue(np.all(np.diff(scores[0, :valid]) <= 0), "scores are sorted")
        self.assertTrue(np.all((classes[0, :valid] >= 0) & (classes[0, :valid] < 90)))
        self.assertTrue(np.all(boxes[0, :valid, 2] >= boxes[0, :valid, 0]))

    @parameterized.parameters(*testing.models())
    def test_metadata_and_labels(self, target):
        model, model_spec = testing.models()[target], spec(target)
        side = model_spec.height
        with open(testing.model_file(target, "contract")) as metadata_file:
            metadata = json.load(metadata_file)
        self.assertEqual(metadata["feature_extractor"], model_spec.feature_extractor.type)
        self.assertEqual(metadata["inference_type"], model["inference_type"])
        self.assertEqual(metadata["activation_ranges"], activation_ranges(model, model_spec))
        self.assertIs(metadata["synthetic"], True)  # the embedded default: random weights, and it says so
        self.assertEqual(metadata["input"]["shape"], [1, side, side, 3])
        self.assertEqual([out["name"] for out in metadata["outputs"]], [name for name, _ in OUTPUTS])
        with open(testing.model_file(target, "labels")) as labels:
            names = labels.read().splitlines()
        self.assertLen(names, 90)
        self.assertEqual((names[0], names[89]), ("person", "toothbrush"))

    @parameterized.parameters(*testing.models())
    def test_custom_op_options_and_anchors(self, target):
        """Read from the flatbuffer itself: the op's options match the config, anchors the formulas."""
        with open(testing.model_file(target), "rb") as model_bytes:
            buffer = model_bytes.read()
        model = schema.Model.GetRootAsModel(buffer, 0)
        subgraph = model.Subgraphs(0)
        custom_ops = [subgraph.Operators(index) for index in range(subgraph.OperatorsLength())
                      if model.OperatorCodes(subgraph.Operators(index).OpcodeIndex()).CustomCode()
                      == b"TFLite_Detection_PostProcess"]
        self.assertLen(custom_ops, 1)
        (operator,) = custom_ops
        options = flatbuffers.flexbuffers.Loads(operator.CustomOptionsAsNumpy().tobytes())
        spec = pipeline_config.read(testing.model_file(target, "pipeline_config"))
        self.assertEqual({key: options[key] for key in ("max_detections", "max_classes_per_detection",
                                                          "detections_per_class", "use_regular_nms", "num_classes")},
                         {"max_detections": 10, "max_classes_per_detection": 1, "detections_per_class": 100,
                          "use_regular_nms": False, "num_classes": spec.num_classes})
        self.assertEqual([options[key] for key in ("y_scale", "x_scale", "h_scale", "w_scale")], [10, 10, 5, 5])
        self.assertAlmostEqual(options["nms_iou_threshold"], spec.nms_iou_threshold, places=6)
        self.assertAlmostEqual(options["nms_score_threshold"], spec.nms_score_threshold, places=9)

        anchors_tensor = subgraph.Tensors(operator.Inputs(2))
        self.assertEqual(anchors_tensor.Name(), b"anchors")
        data = model.Buffers(anchors_tensor.Buffer()).DataAsNumpy()
        tolerance = 1e-4
        self.assertEqual(anchors_tensor.Type(), schema.TensorType.UINT8 if quantized(target) else schema.TensorType.FLOAT32)
        if quantized(target):  # TOCO's layout: uint8 anchors, within half a step of the float ones
            quantization = anchors_tensor.Quantization()
            step, zero_point = quantization.Scale(0), quantization.ZeroPoint(0)
            anchors = (np.frombuffer(data.tobytes(), np.uint8).astype(np.float32) - zero_point) * step
            tolerance += step / 2
        else:
            anchors = np.frombuffer(data.tobytes(), np.float32)
        anchors = anchors.reshape(anchors_tensor.ShapeAsNumpy())
        if isinstance(spec.anchors, pipeline_config.MultiscaleAnchors):
            reference = anchor_reference.retinanet_anchors(3, 7, 4.0, (1.0, 2.0, 0.5), 2, spec.height)
        else:
            reference = anchor_reference.ssd_anchors(0.2, 0.95, (1.0, 2.0, 0.5, 3.0, 0.3333), [19, 10, 5, 3, 2, 1])
        np.testing.assert_allclose(anchors, np.array(reference, np.float32), atol=tolerance)


if __name__ == "__main__":
    absltest.main()
