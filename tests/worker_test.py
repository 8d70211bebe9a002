"""Our tools give the same outputs and messages as persistent workers and as one-off actions."""

import os
import shutil
import subprocess
import sys

from absl.testing import absltest

import testing
from ssd_tflite import persistent_worker

CONVERTER_FLAGS = ["--input_arrays=normalized_input_image_tensor",
                   "--output_arrays=TFLite_Detection_PostProcess,TFLite_Detection_PostProcess:1,"
                   "TFLite_Detection_PostProcess:2,TFLite_Detection_PostProcess:3",
                   "--allow_custom_ops"]
QUANTIZED_FLAGS = ["--inference_type=QUANTIZED_UINT8", "--mean_values=128", "--std_values=128",
                   "--default_ranges_min=0", "--default_ranges_max=255"]


class Worker:
    """A tool started with --persistent_worker, driven through Bazel's protocol."""

    def __init__(self, script: str):
        self.process = subprocess.Popen([sys.executable, script, "--persistent_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.requests = 0

    def run(self, arguments: list[str]) -> tuple[int, str]:
        self.requests += 1
        persistent_worker.write_delimited(self.process.stdin, persistent_worker.WorkRequest(
            arguments=arguments, request_id=self.requests))
        response = persistent_worker.read_delimited(self.process.stdout, persistent_worker.WorkResponse)
        self.assert_answered(response)
        return response.exit_code, response.output

    def assert_answered(self, response) -> None:
        if response is None or response.request_id != self.requests:
            raise AssertionError(f"request {self.requests} got no response: {response}")

    def close(self) -> int:
        self.process.stdin.close()
        return self.process.wait(60)


def run_action(script: str, arguments: list[str], params: str) -> tuple[int, str]:
    """The tool as a one-off action: its flags in a params file, output on stderr."""
    with open(params, "w") as out:
        out.write("\n".join(arguments) + "\n")
    result = subprocess.run([sys.executable, script, "@" + params], capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


def read(path: str) -> bytes:
    with open(path, "rb") as content:
        return content.read()


class WorkerTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path
        self.converter = testing.runfile("py/toco.py")

    def convert_flags(self, target: str, output: str, *extra: str) -> list[str]:
        return [f"--input_file={testing.model_graph(target)}", f"--output_file={os.path.join(self.tmp, output)}",
                *CONVERTER_FLAGS, *extra]

    def test_worker_outputs_equal_one_off_actions_and_do_not_depend_on_earlier_requests(self):
        builds = {"float": ("ssdlite_mobilenet_v2_tflite", []),
                  "quantized": ("ssd_mobilenet_v1_quant_tflite", QUANTIZED_FLAGS)}
        expected = {}
        for name, (target, extra) in builds.items():
            flags = self.convert_flags(target, f"{name}_action.tflite", *extra)
            self.assertEqual(run_action(self.converter, flags, os.path.join(self.tmp, name + ".params")), (0, ""))
            expected[name] = read(os.path.join(self.tmp, f"{name}_action.tflite"))
        worker = Worker(self.converter)
        self.addCleanup(worker.close)
        # float, uint8, then float again in one process: each equals its one-off action's bytes.
        for step, name in enumerate(("float", "quantized", "float")):
            target, extra = builds[name]
            output = f"{name}_worker_{step}.tflite"
            self.assertEqual(worker.run(self.convert_flags(target, output, *extra)), (0, ""), output)
            self.assertEqual(read(os.path.join(self.tmp, output)), expected[name], output)

    def test_bad_input_gives_the_same_message_in_both_modes(self):
        cases = {
            "missing graph": [f"--input_file={self.tmp}/missing.pb", f"--output_file={self.tmp}/out.tflite",
                              *CONVERTER_FLAGS],
            "unknown flag": self.convert_flags("ssdlite_mobilenet_v2_tflite", "out.tflite", "--allow_custom_opz"),
            "zero std": self.convert_flags("ssd_mobilenet_v1_quant_tflite", "out.tflite",
                                           *QUANTIZED_FLAGS[:2], "--std_values=0"),
        }
        worker = Worker(self.converter)
        self.addCleanup(worker.close)
        for case, flags in cases.items():
            action = run_action(self.converter, flags, os.path.join(self.tmp, "bad.params"))
            self.assertEqual(action[0], 1, case)
            self.assertStartsWith(action[1], "toco: error: ", case)
            self.assertEqual(worker.run(flags), action, case)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "out.tflite")), case)

    def test_worker_with_edited_sources_answers_from_new_code_then_exits(self):
        tools = os.path.join(self.tmp, "py")
        shutil.copytree(os.path.dirname(os.path.realpath(testing.runfile("py/model_contract.py"))), tools,
                        ignore=shutil.ignore_patterns("__pycache__"))
        contract = os.path.join(tools, "model_contract.py")
        flags = [f"--pipeline_config_path={self.tmp}/missing.config", f"--metadata_out={self.tmp}/m.json",
                 f"--labels_out={self.tmp}/labels.txt"]
        worker = Worker(contract)
        code, output = worker.run(flags)
        self.assertEqual(code, 1)
        errors = os.path.join(tools, "ssd_tflite", "errors.py")
        with open(errors, "a") as edited:
            edited.write("\nraise SystemExit('edited errors.py was loaded')\n")
        self.assertEqual(worker.run(flags), (1, "edited errors.py was loaded\n"))
        self.assertEqual(worker.close(), 0, "a worker whose sources changed exits after answering")


if __name__ == "__main__":
    absltest.main()
