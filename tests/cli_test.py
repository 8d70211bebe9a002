"""The command-line tools: clean errors for user mistakes, reproducible output."""

import json
import os
import subprocess

import numpy as np
from absl.testing import absltest
from PIL import Image

import testing
from ssd_tflite import tflite_metadata

GRAPH = testing.model_file("ssd_mobilenet_v1_quant_tflite", "graph")
REAL_MODEL = testing.testdata("real_models/ssd_mobilenet_v1_075_quant_8class_2019_02.tflite")
EIGHT_CLASS_CONFIG = testing.testdata("real_models/ssd_mobilenet_v1_075_quant_8class.pipeline.config")
CONVERT_FLAGS = [
    "--input_shapes=1,300,300,3", "--input_arrays=normalized_input_image_tensor",
    "--output_arrays=TFLite_Detection_PostProcess,TFLite_Detection_PostProcess:1,"
    "TFLite_Detection_PostProcess:2,TFLite_Detection_PostProcess:3",
    "--inference_type=QUANTIZED_UINT8", "--mean_values=128", "--std_values=128",
    "--default_ranges_min=0", "--default_ranges_max=255", "--allow_custom_ops",
]


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([testing.runfile(f"cli/{name}"), *args], capture_output=True, text=True, timeout=600)


class CliTest(absltest.TestCase):

    def assert_clean_error(self, result: subprocess.CompletedProcess, *fragments: str):
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    def test_export_reports_bad_config_without_traceback(self):
        workdir = self.create_tempdir()
        config = workdir.create_file("pipeline.config", "model { ssd { num_classes: 3 feature_extractor { type: 'x' } } }")
        output = os.path.join(workdir.full_path, "out")
        result = run_tool("export_tflite_ssd_graph", f"--pipeline_config_path={config.full_path}",
                          "--trained_checkpoint_prefix=model.ckpt", f"--output_directory={output}")
        self.assert_clean_error(result, "export_tflite_ssd_graph: error:", "model.ssd.image_resizer")
        self.assertFalse(os.path.exists(output))

    def test_toco_refuses_unsupported_inference_type(self):
        output = os.path.join(self.create_tempdir().full_path, "detect.tflite")
        flags = [flag if not flag.startswith("--inference_type") else "--inference_type=INT8" for flag in CONVERT_FLAGS]
        result = run_tool("toco", f"--input_file={GRAPH}", f"--output_file={output}", *flags)
        self.assert_clean_error(result, "--inference_type=INT8 is not supported", "QUANTIZED_UINT8")
        self.assertFalse(os.path.exists(output))

    def test_tflite_to_checkpoint_recovers_a_real_model_and_prints_its_flags(self):
        output = os.path.join(self.create_tempdir().full_path, "recovered")
        result = run_tool("tflite_to_checkpoint", f"--tflite_file={REAL_MODEL}", f"--pipeline_config_path={EIGHT_CLASS_CONFIG}",
                          f"--output_directory={output}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertCountEqual(os.listdir(output), ["model.ckpt.index", "model.ckpt.data-00000-of-00001",
                                                   "checkpoint", "pipeline.config"])
        self.assertIn("--max_detections=10 --max_classes_per_detection=1 --detections_per_class=0", result.stdout)
        self.assertIn("--mean_values=128 --std_values=128 --allow_custom_ops\n", result.stdout)

    def test_tflite_to_checkpoint_float_prints_the_float_flags_and_drops_quantization(self):
        output = os.path.join(self.create_tempdir().full_path, "recovered")
        result = run_tool("tflite_to_checkpoint", f"--tflite_file={REAL_MODEL}", f"--pipeline_config_path={EIGHT_CLASS_CONFIG}",
                          f"--output_directory={output}", "--float")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--max_detections=10 --max_classes_per_detection=1 --detections_per_class=0", result.stdout)
        self.assertIn("toco flags: --inference_type=FLOAT --allow_custom_ops\n", result.stdout)
        with open(os.path.join(output, "pipeline.config")) as config:
            self.assertNotIn("graph_rewriter", config.read())

    def test_tflite_to_checkpoint_names_a_config_of_another_model(self):
        output = os.path.join(self.create_tempdir().full_path, "recovered")
        pets = EIGHT_CLASS_CONFIG.replace("8class", "pets")
        result = run_tool("tflite_to_checkpoint", f"--tflite_file={REAL_MODEL}", f"--pipeline_config_path={pets}",
                          f"--output_directory={output}")
        self.assert_clean_error(result, "detects 8 classes, the config's num_classes is 37")
        self.assertFalse(os.path.exists(output))

    def test_tflite_to_checkpoint_refuses_a_file_that_is_no_model(self):
        output = os.path.join(self.create_tempdir().full_path, "recovered")
        result = run_tool("tflite_to_checkpoint", f"--tflite_file={EIGHT_CLASS_CONFIG}", f"--pipeline_config_path={EIGHT_CLASS_CONFIG}",
                          f"--output_directory={output}")
        self.assert_clean_error(result, f"{EIGHT_CLASS_CONFIG}: not a TFLite model")
        self.assertFalse(os.path.exists(output))

    def test_toco_refuses_unknown_flag(self):
        result = run_tool("toco", f"--input_file={GRAPH}", "--output_file=x.tflite", "--quantize_weights", *CONVERT_FLAGS)
        self.assertEqual(result.returncode, 1)
        self.assertIn("quantize_weights", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_an_action_asking_for_help_or_with_an_unreadable_params_file_gets_a_clean_message(self):
        workdir = self.create_tempdir()
        cases = {
            "--helpfull\n": "--input_file: ",
            "'--input_file=no closing quote\n": ": not a shell-quoted params file: No closing quotation",
            None: "toco: error: cannot read the params file ",
        }
        for index, (content, message) in enumerate(cases.items()):
            params = os.path.join(workdir.full_path, f"{index}.params")
            if content is not None:
                workdir.create_file(f"{index}.params", content)
            with self.subTest(params=content):
                self.assert_clean_error(run_tool("toco", "@" + params), message)

    def test_toco_is_reproducible(self):
        workdir = self.create_tempdir().full_path
        outputs = [os.path.join(workdir, f"run{index}.tflite") for index in range(2)]
        for output in outputs:
            result = run_tool("toco", f"--input_file={GRAPH}", f"--output_file={output}", *CONVERT_FLAGS)
            self.assertEqual(result.returncode, 0, result.stderr)
        with open(outputs[0], "rb") as first, open(outputs[1], "rb") as second:
            self.assertEqual(first.read(), second.read())
        # The rule's last step: the same metadata embedded by the CLI gives the same bytes.
        target = "models/ssd_mobilenet_v1_quant_tflite"
        built = testing.runfile(target + ".tflite")
        embedded = tflite_metadata.read(built)
        described = os.path.join(workdir, "described.tflite")
        result = run_tool("populate_metadata", f"--input_file={outputs[0]}", f"--output_file={described}",
                          f"--labels={testing.runfile(target + '_labels.txt')}",
                          f"--contract={testing.runfile(target + '_contract.json')}",
                          f"--name={embedded.name}", f"--description={embedded.description}",
                          f"--version={embedded.version}")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(built, "rb") as rule_output, open(described, "rb") as ours:
            self.assertEqual(rule_output.read(), ours.read(), "the Bazel rule and the CLIs give the same model")

    def populate(self, model: str, contract: dict, *flags: str) -> tuple[subprocess.CompletedProcess, str, str]:
        """populate_metadata on `model` with `contract` (as JSON), the uint8 SSD MobileNet v1's labels."""
        workdir = self.create_tempdir()
        contract_path = workdir.create_file("contract.json", json.dumps(contract)).full_path
        output = os.path.join(workdir.full_path, "out.tflite")
        result = run_tool("populate_metadata", f"--input_file={model}", f"--output_file={output}",
                          f"--labels={testing.model_file('ssd_mobilenet_v1_quant_tflite', 'labels')}",
                          f"--contract={contract_path}", "--name=detect", *flags)
        return result, contract_path, output

    def test_populate_metadata_refuses_a_model_that_is_not_the_one_its_contract_describes(self):
        """The read-back check, with metadata embedded or not: float for uint8, another zero point, channel 2."""
        with open(testing.model_file("ssd_mobilenet_v1_quant_tflite", "contract")) as contract_file:
            uint8 = json.load(contract_file)
        float_model = testing.model_file("ssdlite_mobilenet_v2_tflite")
        uint8_model = testing.model_file("ssd_mobilenet_v1_quant_tflite")
        other_zero_point = dict(uint8, input=dict(uint8["input"], mean=[127, 127, 127]))
        other_channel = dict(uint8, input=dict(uint8["input"], mean=[128, 128, 0], std=[128, 128, 1]))
        for embed in ("--embed_metadata=true", "--embed_metadata=false"):
            for model, contract, fragment in ((float_model, uint8, "its input dtype is 'float32', the contract's 'uint8'"),
                                              (uint8_model, other_zero_point, "is read as (q - 128) / 128"),
                                              (uint8_model, other_channel, "is read as (q - 128) / 128")):
                result, contract_path, output = self.populate(model, contract, embed)
                self.assert_clean_error(result, model, contract_path, fragment)
                self.assertFalse(os.path.exists(output), "nothing is written for a refused model")
        result, _, output = self.populate(uint8_model, uint8, "--embed_metadata=false")
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(uint8_model, "rb") as given, open(output, "rb") as written:
            self.assertEqual(given.read(), written.read(), "--embed_metadata=false writes the model unchanged")

    def test_detect_prints_detections_and_writes_annotated_png(self):
        output = os.path.join(self.create_tempdir().full_path, "annotated.png")
        photo = testing.testdata("chelsea.png")
        result = run_tool("detect", "--model", testing.runfile("models/ssd_mobilenet_v1_quant_tflite.tflite"),
                          "--image", photo, "--threshold", "0", "--output", output)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], f"10 detection(s) with score >= 0.0 in {photo}")
        labels = set(open(testing.runfile("models/ssd_mobilenet_v1_quant_tflite_labels.txt")).read().splitlines())
        for line in lines[1:11]:
            label, score, box = line.split("\t")
            self.assertIn(label, labels)
            self.assertTrue(0.0 <= float(score) <= 1.0)
            self.assertRegex(box, r"^ymin=\d+ xmin=\d+ ymax=\d+ xmax=\d+$")
        with Image.open(photo) as original, Image.open(output) as annotated:
            self.assertEqual(annotated.format, "PNG")
            self.assertEqual(annotated.size, original.size)
            self.assertGreater(np.abs(np.asarray(annotated, np.int16) - np.asarray(original, np.int16)).sum(), 0)

    def test_detect_refuses_a_file_that_is_not_an_image(self):
        output = os.path.join(self.create_tempdir().full_path, "annotated.png")
        not_an_image = testing.testdata("ssdlite_mobilenet_v2_zoo.manifest.tsv")
        result = run_tool("detect", "--model", testing.runfile("models/ssd_mobilenet_v1_quant_tflite.tflite"),
                          "--image", not_an_image, "--output", output)
        self.assert_clean_error(result, f"detect: error: {not_an_image}: not an image")
        self.assertFalse(os.path.exists(output))

    def test_compare_detections_prints_the_agreement(self):
        photo = testing.testdata("coffee.png")
        result = run_tool("compare_detections",
                          "--reference", testing.runfile("models/ssdlite_mobilenet_v2_tflite.tflite"),
                          "--candidate", testing.runfile("models/ssdlite_mobilenet_v2_calibrated_uint8_tflite.tflite"),
                          "--images", photo)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"on 1 image\(s\): ([1-9]|10)/10 matched, IoU [01]\.\d\d, score gap 0\.\d{3}\n$")

    def test_compare_detections_names_a_missing_model(self):
        missing = os.path.join(self.create_tempdir().full_path, "gone.tflite")
        result = run_tool("compare_detections", "--reference", missing,
                          "--candidate", testing.runfile("models/ssd_mobilenet_v1_quant_tflite.tflite"),
                          "--images", testing.testdata("coffee.png"))
        self.assert_clean_error(result, f"compare_detections: error: {missing}: no such model file")


if __name__ == "__main__":
    absltest.main()
