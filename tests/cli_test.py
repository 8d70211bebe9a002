"""The command-line tools: clean errors for user mistakes, reproducible output."""

import os
import subprocess

from absl.testing import absltest

import testing

GRAPH = testing.runfile("models/ssd_mobilenet_v1_quant_tflite_graph.pb")
CONVERT_FLAGS = [
    "--input_shapes=1,300,300,3", "--input_arrays=normalized_input_image_tensor",
    "--output_arrays=TFLite_Detection_PostProcess,TFLite_Detection_PostProcess:1,"
    "TFLite_Detection_PostProcess:2,TFLite_Detection_PostProcess:3",
    "--inference_type=QUANTIZED_UINT8", "--mean_values=128", "--std_values=128",
    "--default_ranges_min=0", "--default_ranges_max=255", "--allow_custom_ops",
]


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([testing.runfile(f"py/{name}"), *args], capture_output=True, text=True, timeout=600)


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

    def test_toco_refuses_unknown_flag(self):
        result = run_tool("toco", f"--input_file={GRAPH}", "--output_file=x.tflite", "--quantize_weights", *CONVERT_FLAGS)
        self.assertEqual(result.returncode, 1)
        self.assertIn("quantize_weights", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_toco_is_reproducible(self):
        workdir = self.create_tempdir().full_path
        outputs = [os.path.join(workdir, f"run{index}.tflite") for index in range(2)]
        for output in outputs:
            result = run_tool("toco", f"--input_file={GRAPH}", f"--output_file={output}", *CONVERT_FLAGS)
            self.assertEqual(result.returncode, 0, result.stderr)
        with open(outputs[0], "rb") as first, open(outputs[1], "rb") as second:
            self.assertEqual(first.read(), second.read())
        with open(testing.runfile("models/ssd_mobilenet_v1_quant_tflite.tflite"), "rb") as built, \
                open(outputs[0], "rb") as ours:
            self.assertEqual(built.read(), ours.read(), "the Bazel rule and the CLI give the same model")


if __name__ == "__main__":
    absltest.main()
