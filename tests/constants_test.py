"""The constants that the Starlark rules, the Python tools and the worker image share are equal.

tools/private/constants.bzl defines each once for Starlark; each has one Python twin (or, for the
Dockerfile and demo/serve.py, which import nothing of ours, a copy), compared here.
"""

import dataclasses
import importlib.util
import os
import re
import sys

from absl.testing import absltest

import testing
from ssd_tflite import checkpoint_files, contract, export, tflite_graph


def load_script(path: str, name: str):
    """The Python file at the workspace-relative `path`, imported as module `name`."""
    spec = importlib.util.spec_from_file_location(name, testing.runfile(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dockerfile_text() -> str:
    """tools/remote/Dockerfile with its line continuations joined."""
    with open(testing.runfile("tools/remote/Dockerfile")) as dockerfile:
        return dockerfile.read().replace("\\\n", " ")


class ConstantsTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.starlark = testing.starlark_constants()

    def test_tensor_names(self):
        self.assertEqual(self.starlark["INPUT_ARRAY"], tflite_graph.INPUT_NAME)
        self.assertEqual(tuple(self.starlark["OUTPUT_ARRAYS"]), tflite_graph.OUTPUT_ARRAYS)

    def test_postprocessing_defaults(self):
        self.assertEqual(self.starlark["POSTPROCESSING_DEFAULTS"],
                         dataclasses.asdict(tflite_graph.PostProcessingFlags()))

    def test_graph_file_name(self):
        self.assertEqual(self.starlark["GRAPH_BASENAME"], export.GRAPH_FILE)

    def test_files_beside_the_model(self):
        self.assertEqual(self.starlark["CONTRACT_SUFFIX"], contract.CONTRACT_SUFFIX)
        self.assertEqual(self.starlark["LABELS_SUFFIX"], contract.LABELS_SUFFIX)
        self.assertEqual(self.starlark["CONTRACT_SUFFIX"], load_script("demo/serve.py", "serve").CONTRACT_SUFFIX)

    def test_checkpoint_files(self):
        self.assertEqual(self.starlark["CHECKPOINT_PREFIX"], checkpoint_files.PREFIX)
        self.assertEqual(self.starlark["CHECKPOINT_DATA_SHARD"], checkpoint_files.DATA_SHARD)
        self.assertEqual(self.starlark["CHECKPOINT_STATE_FILE"], checkpoint_files.STATE_FILE)
        self.assertEqual(self.starlark["CHECKPOINT_CONFIG_FILE"], checkpoint_files.CONFIG_FILE)

    def test_mediapipe_bundle(self):
        self.assertEqual(self.starlark["MEDIAPIPE_BUNDLE"], load_script("demo/serve.py", "serve").MEDIAPIPE_BUNDLE)

    def test_virtualenv_marker_and_name(self):
        installer = load_script("tools/private/install_venv.py", "install_venv")
        self.assertEqual(self.starlark["VENV_COMPLETE_MARKER"], installer.COMPLETE_MARKER)
        # The repository rule names this test's environment so; the wrapper's remote fallback
        # and the worker image (tools/remote/Dockerfile) use the same name.
        self.assertEqual(installer.environment_name(testing.runfile("requirements_lock.txt")),
                         os.path.basename(os.path.realpath(sys.prefix)))

    def test_worker_image_installs_where_the_wrapper_looks(self):
        text = dockerfile_text()
        self.assertEqual(re.findall(r"install_venv\.py install\s+\S+\s+(\S+)", text),
                         [self.starlark["WORKER_VENVS_ROOT"]])
        for path in re.findall(r"/opt/[^\s<]*", text):
            self.assertStartsWith(path, self.starlark["WORKER_VENVS_ROOT"])

    def test_worker_image_name(self):
        tags = re.findall(r"docker build .* -t \"([^\"$]+)", dockerfile_text())
        self.assertEqual(tags, [self.starlark["WORKER_IMAGE_PREFIX"][len("docker://"):]])


if __name__ == "__main__":
    absltest.main()
