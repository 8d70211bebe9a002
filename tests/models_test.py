"""Every //models target is a working detect.tflite with the classic contract."""

import json

import flatbuffers.flexbuffers
import numpy as np
from absl.testing import absltest, parameterized
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import schema_py_generated as schema

import anchor_reference
import testing
from ssd_tflite import pipeline_config

QAT = "checkpoint (quantization-aware training)"
CALIBRATED = "calibrated on images"
DEFAULT = "default 0..255"
# target -> (input side, quantized uint8, feature extractor, where the uint8 activation ranges come from)
MODELS = {
    "ssd_mobilenet_v1_quant_tflite": (300, True, "ssd_mobilenet_v1", QAT),
    "ssd_mobilenet_v2_quant_tflite": (300, True, "ssd_mobilenet_v2", QAT),
    "ssdlite_mobilenet_v2_tflite": (300, False, "ssd_mobilenet_v2", None),
    "ssdlite_mobilenet_v2_uint8_tflite": (300, True, "ssd_mobilenet_v2", DEFAULT),
    "ssdlite_mobilenet_v2_calibrated_uint8_tflite": (300, True, "ssd_mobilenet_v2", CALIBRATED),
    "ssd_resnet50_fpn_tflite": (640, False, "ssd_resnet50_v1_fpn", None),
    "ssd_resnet50_fpn_uint8_tflite": (640, True, "ssd_resnet50_v1_fpn", DEFAULT),
    "ssd_resnet50_fpn_calibrated_uint8_tflite": (640, True, "ssd_resnet50_v1_fpn", CALIBRATED),
    "mlperf_ssd_mobilenet_v1_8bit_tflite": (300, True, "ssd_mobilenet_v1", QAT),
}
CONFIGS = {
    "ssd_mobilenet_v1_quant_tflite": "ssd_mobilenet_v1_quant",
    "ssd_mobilenet_v2_quant_tflite": "ssd_mobilenet_v2_quant",
    "ssdlite_mobilenet_v2_tflite": "ssdlite_mobilenet_v2",
    "ssdlite_mobilenet_v2_uint8_tflite": "ssdlite_mobilenet_v2",
    "ssdlite_mobilenet_v2_calibrated_uint8_tflite": "ssdlite_mobilenet_v2",
    "ssd_resnet50_fpn_tflite": "ssd_resnet50_fpn",
    "ssd_resnet50_fpn_uint8_tflite": "ssd_resnet50_fpn",
    "ssd_resnet50_fpn_calibrated_uint8_tflite": "ssd_resnet50_fpn",
    "mlperf_ssd_mobilenet_v1_8bit_tflite": "mlperf_ssd_mobilenet_v1_8bit",
}
OUTPUTS = [("TFLite_Detection_PostProcess", [1, 10, 4]), ("TFLite_Detection_PostProcess:1", [1, 10]),
           ("TFLite_Detection_PostProcess:2", [1, 10]), ("TFLite_Detection_PostProcess:3", [1])]


def model_file(target: str, suffix: str) -> str:
    return testing.runfile(f"models/{target}{suffix}")


class ModelContractTest(parameterized.TestCase):

    @parameterized.parameters(*MODELS)
    def test_contract_and_inference(self, target):
        side, quantized, _, _ = MODELS[target]
        interpreter = Interpreter(model_path=model_file(target, ".tflite"))
        interpreter.allocate_tensors()
        (image,) = interpreter.get_input_details()
        self.assertEqual(image["name"], "normalized_input_image_tensor")
        self.assertEqual(image["shape"].tolist(), [1, side, side, 3])
        if quantized:
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
        interpreter.set_tensor(image["index"], pixels.astype(np.uint8) if quantized
                               else ((pixels - 128) / 128).astype(np.float32))
        interpreter.invoke()
        boxes, classes, scores, count = (interpreter.get_tensor(out["index"]) for out in outputs)
        self.assertTrue(0 < count[0] <= 10)
        valid = int(count[0])
        self.assertTrue(np.all((scores[0, :valid] >= 0) & (scores[0, :valid] <= 1)))
        self.assertTrue(np.all(np.diff(scores[0, :valid]) <= 0), "scores are sorted")
        self.assertTrue(np.all((classes[0, :valid] >= 0) & (classes[0, :valid] < 90)))
        self.assertTrue(np.all(boxes[0, :valid, 2] >= boxes[0, :valid, 0]))

    @parameterized.parameters(*MODELS)
    def test_metadata_and_labels(self, target):
        side, quantized, extractor, activation_ranges = MODELS[target]
        with open(model_file(target, "_metadata.json")) as metadata_file:
            metadata = json.load(metadata_file)
        self.assertEqual(metadata["feature_extractor"], extractor)
        self.assertEqual(metadata["inference_type"], "QUANTIZED_UINT8" if quantized else "FLOAT")
        self.assertEqual(metadata["activation_ranges"], activation_ranges)
        self.assertIs(metadata["synthetic"], True)  # the embedded default: random weights, and it says so
        self.assertEqual(metadata["input"]["shape"], [1, side, side, 3])
        self.assertEqual([out["name"] for out in metadata["outputs"]], [name for name, _ in OUTPUTS])
        with open(model_file(target, "_labels.txt")) as labels:
            names = labels.read().splitlines()
        self.assertLen(names, 90)
        self.assertEqual((names[0], names[89]), ("person", "toothbrush"))

    @parameterized.parameters(*MODELS)
    def test_custom_op_options_and_anchors(self, target):
        """Read from the flatbuffer itself: the op's options match the config, anchors the formulas."""
        with open(model_file(target, ".tflite"), "rb") as model_bytes:
            buffer = model_bytes.read()
        model = schema.Model.GetRootAsModel(buffer, 0)
        subgraph = model.Subgraphs(0)
        custom_ops = [subgraph.Operators(index) for index in range(subgraph.OperatorsLength())
                      if model.OperatorCodes(subgraph.Operators(index).OpcodeIndex()).CustomCode()
                      == b"TFLite_Detection_PostProcess"]
        self.assertLen(custom_ops, 1)
        (operator,) = custom_ops
        options = flatbuffers.flexbuffers.Loads(operator.CustomOptionsAsNumpy().tobytes())
        spec = pipeline_config.read(testing.runfile(f"models/configs/{CONFIGS[target]}.pipeline.config"))
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
        quantized = MODELS[target][1]
        self.assertEqual(anchors_tensor.Type(), schema.TensorType.UINT8 if quantized else schema.TensorType.FLOAT32)
        if quantized:  # TOCO's layout: uint8 anchors, within half a step of the float ones
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
