"""The constants that the Starlark rules and the Python tools both use are equal."""

import dataclasses
import importlib.util
import os
import sys

from absl.testing import absltest

import testing
from ssd_tflite import export, graph_contract


def install_venv():
    spec = importlib.util.spec_from_file_location("install_venv", testing.runfile("tools/private/install_venv.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ConstantsTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.starlark = testing.starlark_constants()

    def test_tensor_names(self):
        self.assertEqual(self.starlark["INPUT_ARRAY"], graph_contract.INPUT_NAME)
        self.assertEqual(tuple(self.starlark["OUTPUT_ARRAYS"]), graph_contract.OUTPUT_ARRAYS)

    def test_postprocessing_defaults(self):
        self.assertEqual(self.starlark["POSTPROCESSING_DEFAULTS"],
                         dataclasses.asdict(graph_contract.PostProcessingFlags()))

    def test_graph_file_name(self):
        self.assertEqual(self.starlark["GRAPH_BASENAME"], export.GRAPH_FILE)

    def test_virtualenv_marker_and_name(self):
        installer = install_venv()
        self.assertEqual(self.starlark["VENV_COMPLETE_MARKER"], installer.COMPLETE_MARKER)
        # The repository rule names this test's environment so; the wrapper's remote fallback
        # and the worker image (tools/remote/Dockerfile) use the same name.
        self.assertEqual(installer.environment_name(testing.runfile("requirements_lock.txt")),
                         os.path.basename(os.path.realpath(sys.prefix)))


if __name__ == "__main__":
    absltest.main()
