"""Real TOCO detect.tflite files, rebuilt from their own weights, come back the same.

For each real model in testdata/real_models: `reconstruction` puts its
weights back into a checkpoint, our export and our converter (with the flags
the reconstruction reads from the model) build it again, and the two models
are compared operator by operator (paired by data flow):
  (a) every weight, bias and anchor byte is equal;
  (b) every convolution, residual add and score output is equal on the
      photos (uint8, all tensors kept, no delegate);
  (c) the detections have the same classes and scores, boxes within one
      anchor quantization step.
The reference runtime is LiteRT (ai-edge-litert), the maintained TFLite
interpreter; both models run in it, so any difference is the models'.

One difference is expected and pinned: in the two pets models a class head's
TOCO range passes the class concatenation's by over half a step (TOCO
truncated zero points where FakeQuant rounds), so the reconstruction keeps
the concatenation exact and that head comes back with its zero point one off.
The mutation tests show that the comparison sees the two conventions that
matter: weights quantized over the wrong number of levels, and float anchors.
"""

import contextlib
import functools
import os
import tempfile
from unittest import mock

import numpy as np
from absl.testing import absltest, parameterized
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import model_pairing
import testing
from ssd_tflite import (checkpoint_files, conversion, converter_settings, export, flatbuffer_model,
                        pipeline_config, reconstruction, tflite_graph, toco_layout)
from ssd_tflite.images import load_image, resized_pixels

PHOTOS = ("cat.png", "grace_hopper.png", "pets.jpg")
# model -> (config in the workspace, head outputs whose zero point comes back one off, constants compared)
V1_CONSTANTS = 47 * 2 + 1  # weights and bias of 47 convolutions, anchors
V2_CONSTANTS = 72 * 2 + 1
PETS_CONFIG = "tests/testdata/real_models/ssd_mobilenet_v1_075_quant_pets.pipeline.config"
REAL_MODELS = {
    "ssd_mobilenet_v1_075_quant_pets_2018_11": (PETS_CONFIG, ["BoxPredictor_2/ClassPredictor/BiasAdd"], V1_CONSTANTS),
    "ssd_mobilenet_v1_075_quant_pets_2019_10": (PETS_CONFIG, ["BoxPredictor_1/ClassPredictor/BiasAdd"], V1_CONSTANTS),
    "ssd_mobilenet_v1_075_quant_8class_2019_02": (
        "tests/testdata/real_models/ssd_mobilenet_v1_075_quant_8class.pipeline.config", [], V1_CONSTANTS),
    "ssd_mobilenet_v2_quant_coco_coral": (
        "tests/testdata/ssd_mobilenet_v2_quantized_zoo.pipeline.config", [], V2_CONSTANTS),
}
# No mid-2018 TOCO file (256-level weights) is here: //cli:toco makes one in that convention from the
# embedded default, and it must round-trip too. It stores no min/max, which the reconstruction then infers.
MID_2018_STYLE = "ssd_mobilenet_v1_quant_256_level_weights"
REAL_MODELS[MID_2018_STYLE] = ("models/configs/ssd_mobilenet_v1_quant.pipeline.config", [], V1_CONSTANTS)
COMPARED_OUTPUTS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "LOGISTIC")


def real_model(name: str) -> str:
    if name == MID_2018_STYLE:
        return mid_2018_style_model()
    return testing.testdata(f"real_models/{name}.tflite")


def conversion_settings(mean: float, std: float,
                        ignore_weights_narrow_range: bool) -> converter_settings.ConverterSettings:
    return converter_settings.ConverterSettings(
        input_arrays=(tflite_graph.INPUT_NAME,), output_arrays=tflite_graph.OUTPUT_ARRAYS,
        input_shapes=((1, 300, 300, 3),), inference_type="QUANTIZED_UINT8", mean_values=(mean,),
        std_values=(std,), allow_custom_ops=True, ignore_weights_narrow_range=ignore_weights_narrow_range)


def write_converted(graph: str, settings: converter_settings.ConverterSettings, model: str) -> str:
    with open(model, "wb") as out:
        out.write(conversion.convert(graph, settings))
    return model


@functools.cache
def mid_2018_style_model() -> str:
    return write_converted(testing.model_file("ssd_mobilenet_v1_quant_tflite", "graph"),
                           conversion_settings(128, 128, ignore_weights_narrow_range=True),
                           os.path.join(tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"]), "detect.tflite"))


@functools.cache
def rebuilt(name: str, ignore_weights_narrow_range: bool | None = None,
            float_anchors: bool = False) -> tuple[str, reconstruction.Reconstruction]:
    """Reconstructs, exports and converts `name`; the .tflite path and what was reconstructed.

    `ignore_weights_narrow_range` None takes the convention the reconstruction read from the model;
    `float_anchors` leaves out the anchor quantization of toco_layout (a mutation).
    """
    config = testing.runfile(REAL_MODELS[name][0])
    recovered = reconstruction.reconstruct(real_model(name), pipeline_config.read(config))
    work = tempfile.mkdtemp(dir=os.environ["TEST_TMPDIR"])
    checkpoint_files.write_directory(os.path.join(work, "checkpoint"), recovered.values, config)
    export.export_tflite_graph(config, os.path.join(work, "checkpoint", checkpoint_files.PREFIX),
                               os.path.join(work, "export"), postprocessing=recovered.postprocessing,
                               write_pbtxt=False)
    if ignore_weights_narrow_range is None:
        ignore_weights_narrow_range = not recovered.weights_narrow_range
    settings = conversion_settings(recovered.mean_value, recovered.std_value, ignore_weights_narrow_range)
    with mock.patch.object(toco_layout, "_quantize_anchor_constant", lambda *unused: None) if float_anchors \
            else contextlib.nullcontext():
        model = write_converted(os.path.join(work, "export", export.GRAPH_FILE), settings,
                                os.path.join(work, "detect.tflite"))
    return model, recovered


def run(model: str, pixels: np.ndarray) -> Interpreter:
    interpreter = Interpreter(model_path=model, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    return interpreter


def photo_pixels(photo: str) -> np.ndarray:
    image = load_image(testing.testdata(f"real_models/{photo}"))
    return resized_pixels(image, 300, 300)[np.newaxis].astype(np.uint8)


def constants_compared(original_path: str, model_path: str) -> tuple[int, list[str], list[int]]:
    original, model = flatbuffer_model.read(original_path), flatbuffer_model.read(model_path)
    pairing = model_pairing.pair(original, model)
    return (*model_pairing.differing_constants(original, model, pairing), pairing.unpaired)


class RoundTripTest(parameterized.TestCase):

    @parameterized.parameters(*REAL_MODELS)
    def test_weights_biases_and_anchors_are_equal(self, name):
        compared, differing, unpaired = constants_compared(real_model(name), rebuilt(name)[0])
        self.assertEqual(unpaired, [])
        self.assertEqual(compared, REAL_MODELS[name][2])
        self.assertEqual(differing, [])

    @parameterized.parameters(*REAL_MODELS)
    def test_activations_are_equal_on_photos(self, name):
        original_model, model_path = flatbuffer_model.read(real_model(name)), rebuilt(name)[0]
        model = flatbuffer_model.read(model_path)
        pairing = model_pairing.pair(original_model, model)
        moved = rebuilt(name)[1].moved_zero_points
        self.assertEqual(moved, REAL_MODELS[name][1])
        original_ops, ops = original_model.subgraphs[0].operators, model.subgraphs[0].operators
        outputs = [(int(original_ops[a].outputs[0]), int(ops[b].outputs[0])) for a, b in pairing.operators
                   if flatbuffer_model.opcode_name(original_model, original_ops[a]) in COMPARED_OUTPUTS]
        self.assertGreaterEqual(len(outputs), REAL_MODELS[name][2] // 2)
        for photo in PHOTOS:
            pixels = photo_pixels(photo)
            original, ours = run(real_model(name), pixels), run(model_path, pixels)
            for tensor_a, tensor_b in outputs:
                tensor_name = flatbuffer_model.tensor_name(original_model.subgraphs[0].tensors[tensor_a])
                a, b = original.get_tensor(tensor_a).astype(int), ours.get_tensor(tensor_b).astype(int)
                if tensor_name in moved:  # same scale, zero point one off: values within one step
                    self.assertLessEqual(np.abs(a - b).max(), 1, f"{photo}: {tensor_name}")
                else:
                    np.testing.assert_array_equal(a, b, f"{photo}: {tensor_name}")

    @parameterized.parameters(*REAL_MODELS)
    def test_detections_are_equal_on_photos(self, name):
        model_path, _ = rebuilt(name)
        anchors = flatbuffer_model.read(real_model(name))
        anchor_step = flatbuffer_model.quantization(
            anchors.subgraphs[0].tensors[flatbuffer_model.postprocess_operator(anchors, name).inputs[2]]).scale
        for photo in PHOTOS:
            pixels = photo_pixels(photo)
            original, ours = run(real_model(name), pixels), run(model_path, pixels)
            expected = [original.get_tensor(output["index"]) for output in original.get_output_details()]
            actual = [ours.get_tensor(output["index"]) for output in ours.get_output_details()]
            count = int(expected[3][0])
            self.assertEqual(int(actual[3][0]), count, photo)
            top = min(count, 10)
            np.testing.assert_array_equal(actual[1][0, :top], expected[1][0, :top], f"{photo}: classes")
            np.testing.assert_array_equal(actual[2][0, :top], expected[2][0, :top], f"{photo}: scores")
            np.testing.assert_allclose(actual[0][0, :top], expected[0][0, :top], atol=anchor_step, err_msg=photo)

    def test_weights_over_the_wrong_number_of_levels_are_seen(self):
        """Mutation: the mid-2018 convention on a model that honours narrow_range changes the weights."""
        name = "ssd_mobilenet_v2_quant_coco_coral"
        self.assertTrue(rebuilt(name)[1].weights_narrow_range)
        mutated, _ = rebuilt(name, ignore_weights_narrow_range=True)
        compared, differing, _ = constants_compared(real_model(name), mutated)
        self.assertGreaterEqual(len(differing), 72 * 9 // 10, f"of {compared}")

    def test_weight_convention_is_read_from_the_model(self):
        self.assertFalse(rebuilt(MID_2018_STYLE)[1].weights_narrow_range)
        for name in REAL_MODELS.keys() - {MID_2018_STYLE}:
            self.assertTrue(rebuilt(name)[1].weights_narrow_range, name)

    def test_float_anchors_are_seen(self):
        """Mutation: without TOCO's uint8 anchors, the anchor constant differs."""
        name = "ssd_mobilenet_v1_075_quant_8class_2019_02"
        _, differing, _ = constants_compared(real_model(name), rebuilt(name, float_anchors=True)[0])
        self.assertEqual(differing, ["anchors"])


if __name__ == "__main__":
    absltest.main()
