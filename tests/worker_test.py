"""Our tools give the same outputs and messages as persistent workers and as one-off actions."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

from absl.testing import absltest

import testing
from ssd_tflite import persistent_worker

CONVERTER_FLAGS = ["--input_arrays=normalized_input_image_tensor",
                   "--output_arrays=TFLite_Detection_PostProcess,TFLite_Detection_PostProcess:1,"
                   "TFLite_Detection_PostProcess:2,TFLite_Detection_PostProcess:3",
                   "--allow_custom_ops"]
QUANTIZED_FLAGS = ["--inference_type=QUANTIZED_UINT8", "--mean_values=128", "--std_values=128",
                   "--default_ranges_min=0", "--default_ranges_max=255"]
# Characters Bazel's ShellEscaper leaves unquoted; it single-quotes any other argument, ' as '\''.
SHELL_SAFE = re.compile(r"[A-Za-z0-9@%_+:,./-]+")
# A tool of cli.run that records its --value flags in --record, or ends with sys.exit(--exit_with).
FIXTURE_TOOL = textwrap.dedent("""\
    import json

    from ssd_tflite import cli
    from absl import flags

    flags.DEFINE_multi_string("value", [], "Recorded.")
    flags.DEFINE_string("record", None, "Where the values are written as JSON.")
    flags.DEFINE_string("exit_with", None, "sys.exit() argument: a number or a message.")


    def main():
        if flags.FLAGS.exit_with is not None:
            code = flags.FLAGS.exit_with
            raise SystemExit(int(code) if code.isdigit() else code)
        with open(flags.FLAGS.record, "w") as record:
            json.dump(flags.FLAGS.value, record)


    if __name__ == "__main__":
        cli.run(main)
    """)


def shell_quote(argument: str) -> str:
    """An argument as Bazel writes it into a "shell" params file."""
    if SHELL_SAFE.fullmatch(argument):
        return argument
    return "'" + argument.replace("'", "'\\''") + "'"


def params_file(arguments: list[str]) -> str:
    return "".join(shell_quote(argument) + "\n" for argument in arguments)


def params_file_lines(arguments: list[str]) -> list[str]:
    """WorkRequest.arguments as Bazel's worker sends them: the params file's lines (Java's line breaks)."""
    lines = re.split(r"\r\n|\r|\n", params_file(arguments))
    return lines[:-1]  # the file ends with a line break


class Worker:
    """A tool started with --persistent_worker, driven through Bazel's protocol."""

    def __init__(self, script: str):
        self.process = subprocess.Popen([sys.executable, script, "--persistent_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.requests = 0

    def run(self, arguments: list[str]) -> tuple[int, str]:
        self.requests += 1
        persistent_worker.write_delimited(self.process.stdin, persistent_worker.WorkRequest(
            arguments=params_file_lines(arguments), request_id=self.requests))
        response = persistent_worker.read_delimited(self.process.stdout, persistent_worker.WorkResponse)
        self.assert_answered(response)
        return response.exit_code, response.output

    def send_frame(self, frame: bytes):
        """Writes `frame` as one length-prefixed message; returns the response."""
        self.process.stdin.write(persistent_worker.length_prefix(len(frame)) + frame)
        self.process.stdin.flush()
        return persistent_worker.read_delimited(self.process.stdout, persistent_worker.WorkResponse)

    def assert_answered(self, response) -> None:
        if response is None or response.request_id != self.requests:
            raise AssertionError(f"request {self.requests} got no response: {response}")

    def close(self) -> int:
        self.process.stdin.close()
        return self.process.wait(60)


def run_action(script: str, arguments: list[str], params: str) -> tuple[int, str]:
    """The tool as a one-off action: its flags in a params file, output on stderr."""
    with open(params, "w", newline="") as out:
        out.write(params_file(arguments))
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
        return [f"--input_file={testing.model_file(target, 'graph')}", f"--output_file={os.path.join(self.tmp, output)}",
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

    def copied_contract_tool(self, name: str) -> str:
        """model_contract.py and its modules, copied to be edited under a running worker."""
        tools = os.path.join(self.tmp, name)
        shutil.copytree(os.path.dirname(os.path.realpath(testing.runfile("py/model_contract.py"))), tools,
                        ignore=shutil.ignore_patterns("__pycache__"))
        return os.path.join(tools, "model_contract.py")

    def test_worker_with_edited_sources_answers_every_later_request_from_new_code(self):
        """Bazel 4 keeps such a worker and sends it more actions: it must answer them all, with the new code."""
        contract = self.copied_contract_tool("py_edited")
        flags = [f"--pipeline_config_path={self.tmp}/missing.config", f"--contract_out={self.tmp}/m.json",
                 f"--labels_out={self.tmp}/labels.txt"]
        worker = Worker(contract)
        first = worker.run(flags)
        self.assertEqual(first[0], 1)
        errors = os.path.join(os.path.dirname(contract), "ssd_tflite", "errors.py")
        with open(errors) as source:
            original = source.read()
        with open(errors, "a") as edited:
            edited.write("\nraise SystemExit('edited errors.py was loaded')\n")
        self.assertEqual(worker.run(flags), (1, "edited errors.py was loaded\n"))
        self.assertEqual(worker.run(flags), (1, "edited errors.py was loaded\n"))
        with open(errors, "w") as edited:
            edited.write(original + "\n# an edit that changes nothing\n")
        self.assertEqual(worker.run(flags), first)
        self.assertEqual(worker.close(), 0)

    def test_worker_whose_module_was_deleted_answers_from_new_code(self):
        """A module renamed away under a running worker (it crashed on the stamp of the missing file)."""
        contract = self.copied_contract_tool("py_deleted")
        flags = [f"--pipeline_config_path={self.tmp}/missing.config", f"--contract_out={self.tmp}/m.json",
                 f"--labels_out={self.tmp}/labels.txt"]
        worker = Worker(contract)
        self.assertEqual(worker.run(flags)[0], 1)
        os.remove(os.path.join(os.path.dirname(contract), "ssd_tflite", "captured_output.py"))
        for _ in range(2):
            code, output = worker.run(flags)
            self.assertEqual(code, 1)
            self.assertIn("cannot import name 'captured_output'", output)
        self.assertEqual(worker.close(), 0)

    def fixture_tool(self) -> str:
        path = os.path.join(self.tmp, "fixture_tool.py")
        with open(path, "w") as tool:
            tool.write(FIXTURE_TOOL)
        return path

    def test_arguments_with_line_breaks_quotes_and_flag_lines_arrive_intact_in_both_modes(self):
        fixture = self.fixture_tool()
        record = os.path.join(self.tmp, "record.json")
        values = ["model { ssd {\n  num_classes: 7\n} }", "a line\n--record=/elsewhere.json",
                  "ends with a line break\n", "it's \"quoted\" $HOME `date` \\ # ; *", "", "  spaces  ",
                  "\u00fcn\u00efc\u00f6de", "windows\r\nlines"]
        flags = [f"--record={record}", *(f"--value={value}" for value in values)]
        expected = [value.replace("\r\n", "\n") for value in values]  # Bazel's worker reads the file by lines
        self.assertEqual(run_action(fixture, flags, os.path.join(self.tmp, "values.params")), (0, ""))
        with open(record) as recorded:
            self.assertEqual(json.load(recorded), expected)
        os.remove(record)
        worker = Worker(fixture)
        self.addCleanup(worker.close)
        self.assertEqual(worker.run(flags), (0, ""))
        with open(record) as recorded:
            self.assertEqual(json.load(recorded), expected)

    def test_help_and_sys_exit_end_the_request_not_the_worker(self):
        fixture = self.fixture_tool()
        worker = Worker(fixture)
        self.addCleanup(worker.close)
        params = os.path.join(self.tmp, "exit.params")
        for flags in (["--help"], ["--helpfull"]):
            code, output = worker.run(flags)
            self.assertEqual(code, 1, flags)
            self.assertIn("--record: Where the values are written as JSON.", output, flags)
            self.assertEqual(run_action(fixture, flags, params), (code, output), flags)
        for flags, answer in ((["--exit_with=3"], (3, "")), (["--exit_with=gave up"], (1, "gave up\n"))):
            self.assertEqual(worker.run(flags), answer, flags)
            self.assertEqual(run_action(fixture, flags, params), answer, flags)
        self.assertEqual(worker.run([f"--record={self.tmp}/record.json"]), (0, ""), "the worker serves on")

    def test_a_malformed_request_gets_a_failed_response_and_the_worker_serves_on(self):
        worker = Worker(self.fixture_tool())
        self.addCleanup(worker.close)
        frames = {"truncated field": b"\x0a\x10abc", "arguments not UTF-8": b"\x0a\x02\xff\xfe"}
        for case, frame in frames.items():
            response = worker.send_frame(frame)
            self.assertEqual((response.request_id, response.exit_code), (0, 1), case)
            self.assertStartsWith(response.output,
                                  f"fixture_tool: error: malformed WorkRequest of {len(frame)} bytes: ", case)
        unquoted = persistent_worker.WorkRequest(arguments=["'--value=no closing quote"], request_id=7)
        response = worker.send_frame(unquoted.SerializeToString())
        self.assertEqual((response.request_id, response.exit_code, response.output), (
            7, 1, "fixture_tool: error: WorkRequest.arguments: not a shell-quoted params file: No closing quotation\n"))
        self.assertEqual(worker.run([f"--record={self.tmp}/record.json"]), (0, ""), "the worker serves on")

    def test_the_request_fields_the_tools_do_not_read_are_skipped(self):
        """Bazel also sends inputs, cancel, verbosity and sandbox_dir (fields 2, 4, 5 and 6)."""
        worker = Worker(self.fixture_tool())
        self.addCleanup(worker.close)
        record = os.path.join(self.tmp, "record.json")
        argument = f"--record={record}".encode()
        frame = (b"\x0a" + persistent_worker.length_prefix(len(argument)) + argument  # arguments
                 + b"\x12\x0c\x0a\x04a.py\x12\x04\x00\x01\x02\x03"  # inputs: one (path, digest)
                 + b"\x18\x07"  # request_id 7
                 + b"\x20\x00\x28\x02\x32\x03/sb")  # cancel, verbosity, sandbox_dir
        response = worker.send_frame(frame)
        self.assertEqual((response.request_id, response.exit_code, response.output), (7, 0, ""))
        with open(record) as recorded:
            self.assertEqual(json.load(recorded), [])

    def test_a_stream_without_a_next_frame_ends_the_worker_with_one_line(self):
        fixture = self.fixture_tool()
        streams = {
            "length of 11 bytes": b"\xff" * 11,
            "length over 64 bits": b"\xff" * 9 + b"\x7f",
            "length of 2^37 bytes": b"\x80\x80\x80\x80\x80\x04" + b"x" * 100,
            "end inside a length": b"\x80",
            "end inside a message": b"\x10abc",
        }
        for case, stream in streams.items():
            result = subprocess.run([sys.executable, fixture, "--persistent_worker"], input=stream, capture_output=True,
                                    timeout=60, check=False)
            self.assertEqual((result.returncode, result.stdout), (1, b""), case)
            lines = result.stderr.decode().splitlines()
            self.assertLen(lines, 1, f"{case}: {lines}")
            self.assertStartsWith(lines[0], "fixture_tool: error: persistent worker input: ", case)

    def test_a_closed_output_ends_the_worker_with_one_line(self):
        read_end, write_end = os.pipe()
        os.close(read_end)
        request = persistent_worker.WorkRequest(arguments=["--exit_with=0"], request_id=1).SerializeToString()
        result = subprocess.run([sys.executable, self.fixture_tool(), "--persistent_worker"],
                                input=bytes([len(request)]) + request, stdout=write_end, stderr=subprocess.PIPE,
                                timeout=60, check=False)
        os.close(write_end)
        self.assertEqual((result.returncode, result.stderr.decode()),
                         (1, "fixture_tool: error: persistent worker output: its reader closed it\n"))


if __name__ == "__main__":
    absltest.main()
