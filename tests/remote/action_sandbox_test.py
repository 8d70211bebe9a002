"""The test worker's bounds on an action (action_sandbox.py), without BuildGrid or bubblewrap."""

import os
import time

from absl.testing import absltest
from google.protobuf import duration_pb2

import action_sandbox


def running(pid: int) -> bool:
    """Whether process `pid` exists and is no zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class PathTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.create_tempdir("input_root").full_path
        self.outside = self.create_tempdir("outside").full_path

    def test_paths_that_could_leave_the_input_root_are_refused_by_name(self):
        cases = {"/etc/passwd": "output path '/etc/passwd' is absolute",
                 "../escaped.txt": "output path '../escaped.txt' climbs out with '..'",
                 "bazel-out/../../escaped.txt": "output path 'bazel-out/../../escaped.txt' climbs out with '..'",
                 "": "output path '' is empty"}
        for path, message in cases.items():
            with self.assertRaisesWithLiteralMatch(action_sandbox.Refused, message):
                action_sandbox.check_paths("", ["bazel-out/k8-fastbuild/bin/ok.txt", path])
        with self.assertRaisesWithLiteralMatch(action_sandbox.Refused, "working directory '..' climbs out with '..'"):
            action_sandbox.check_paths("..", ["out.txt"])
        action_sandbox.check_paths("", ["bazel-out/k8-fastbuild/bin/models/graph/tflite_graph.pb", "a..b/c.."])

    def test_output_folders_are_made_inside_the_root_and_never_through_a_symlink_out(self):
        action_sandbox.make_output_folders(self.root, "", ["bazel-out/bin/models/graph/tflite_graph.pb"])
        self.assertTrue(os.path.isdir(os.path.join(self.root, "bazel-out/bin/models/graph")))
        os.symlink(self.outside, os.path.join(self.root, "external"))  # an input symlink
        with self.assertRaisesWithLiteralMatch(action_sandbox.Refused, "output path 'external/repo/out.txt': "
                                               "folder 'external' leads out of the input root"):
            action_sandbox.make_output_folders(self.root, "", ["external/repo/out.txt"])
        self.assertEqual(os.listdir(self.outside), [], "no folder is made outside the input root")

    def test_outputs_are_returned_as_what_they_are_and_symlinks_never_followed(self):
        os.makedirs(os.path.join(self.root, "out"))
        with open(os.path.join(self.root, "out", "file.txt"), "w") as output:
            output.write("made by the action")
        os.symlink("/etc/passwd", os.path.join(self.root, "out", "host_file"))
        os.symlink(self.outside, os.path.join(self.root, "out", "host_folder"))
        os.makedirs(os.path.join(self.root, "out", "tree"))
        cases = {("out/file.txt", False): "file", ("out/host_file", False): "symlink",
                 ("out/host_folder", True): "symlink", ("out/tree", True): "folder", ("out/missing", False): None}
        for (path, folder), kind in cases.items():
            self.assertEqual(action_sandbox.returned_as(self.root, "", path, folder), kind, path)

    def test_outputs_of_the_wrong_type_or_behind_a_symlink_out_are_refused_by_name(self):
        os.makedirs(os.path.join(self.root, "out", "tree"))
        os.symlink(self.outside, os.path.join(self.root, "out", "link"))
        with open(os.path.join(self.outside, "host.txt"), "w") as host_file:
            host_file.write("a host file")
        cases = {("out/tree", False): "output 'out/tree' is not a regular file",
                 ("out/link/host.txt", False):
                     "output path 'out/link/host.txt' leads out of the input root through a symlink"}
        for (path, folder), message in cases.items():
            with self.assertRaisesWithLiteralMatch(action_sandbox.Refused, message):
                action_sandbox.returned_as(self.root, "", path, folder)
        os.mkfifo(os.path.join(self.root, "out", "fifo"))
        with self.assertRaisesWithLiteralMatch(action_sandbox.Refused, "output 'out/fifo' is not a folder"):
            action_sandbox.returned_as(self.root, "", "out/fifo", True)


class TimeoutTest(absltest.TestCase):

    def test_an_action_without_a_timeout_gets_the_default(self):
        self.assertEqual(action_sandbox.timeout_seconds(duration_pb2.Duration()),
                         action_sandbox.DEFAULT_TIMEOUT_SECONDS)
        self.assertEqual(action_sandbox.timeout_seconds(duration_pb2.Duration(seconds=60, nanos=500_000_000)), 60.5)

    def test_an_action_out_of_time_is_killed_with_its_whole_process_group(self):
        start = time.monotonic()
        exit_code, stdout, stderr = action_sandbox.run_with_timeout(
            ["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!; echo started >&2; wait"], 1)
        self.assertLess(time.monotonic() - start, 60)
        self.assertEqual((exit_code, stderr), (None, b"started\n"))
        background = int(stdout)
        deadline = time.monotonic() + 10
        while running(background) and time.monotonic() < deadline:  # SIGKILL is not instant
            time.sleep(0.05)
        self.assertFalse(running(background), f"the action's background process {background} survived its timeout")

    def test_an_action_in_time_gives_its_exit_code_and_output(self):
        self.assertEqual(action_sandbox.run_with_timeout(["sh", "-c", "echo out; echo err >&2; exit 3"], 60),
                         (3, b"out\n", b"err\n"))


if __name__ == "__main__":
    absltest.main()
