"""Every //models target is a working detect.tflite with the classic contract."""

import json

import numpy as np
from absl.testing import absltest, parameterized
from ai_edge_litert.interpreter import Interpreter

import testing

# target -> (input side, quantized uint8, feature extractor)
MODELS = {
    "ssd_mobilenet_v1_quant_tflite": (300, True, "ssd_mobilenet_v1"),
    "ssd_mobilenet_v2_quant_tflite": (300, True, "ssd_mobilenet_v2"),
    "ssdlite_mobilenet_v2_tflite": (300, False, "ssd_mobilenet_v2"),
    "ssd_resnet50_fpn_tflite": (640, False, "ssd_resnet50_v1_fpn"),
    "mlperf_ssd_mobilenet_v1_8bit_tflite": (300, True, "ssd_mobilenet_v1"),
}
OUTPUTS = [("TFLite_Detection_PostProcess", [1, 10, 4]), ("TFLite_Detection_PostProcess:1", [1, 10]),
           ("TFLite_Detection_PostProcess:2", [1, 10]), ("TFLite_Detection_PostProcess:3", [1])]


def model_file(target: str, suffix: str) -> str:
    return testing.runfile(f"models/{target}{suffix}")


class ModelContractTest(parameterized.TestCase):

    @parameterized.parameters(*MODELS)
    def test_contract_and_inference(self, target):
        side, quantized, _ = MODELS[target]
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
        side, quantized, extractor = MODELS[target]
        with open(model_file(target, "_metadata.json")) as metadata_file:
            metadata = json.load(metadata_file)
        self.assertEqual(metadata["feature_extractor"], extractor)
        self.assertEqual(metadata["inference_type"], "QUANTIZED_UINT8" if quantized else "FLOAT")
        self.assertEqual(metadata["input"]["shape"], [1, side, side, 3])
        self.assertEqual([out["name"] for out in metadata["outputs"]], [name for name, _ in OUTPUTS])
        with open(model_file(target, "_labels.txt")) as labels:
            names = labels.read().splitlines()
        self.assertLen(names, 90)
        self.assertEqual((names[0], names[89]), ("person", "toothbrush"))


if __name__ == "__main__":
    absltest.main()
