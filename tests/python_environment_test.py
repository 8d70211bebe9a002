"""The Python toolchain runs the interpreter of the locked virtualenv."""

import os
import re
import sys
import unittest
from importlib import metadata


def _locked_versions(lock_path: str) -> dict[str, str]:
    with open(lock_path) as lock:
        return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read(), re.MULTILINE))


class PythonEnvironmentTest(unittest.TestCase):

    def test_interpreter_is_a_virtualenv(self):
        self.assertNotEqual(sys.prefix, sys.base_prefix, sys.executable)

    def test_installed_versions_match_the_lock(self):
        lock = os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], "requirements_lock.txt")
        locked = _locked_versions(lock)
        self.assertIn("tensorflow-cpu", locked)
        for name, version in locked.items():
            with self.subTest(package=name):
                self.assertEqual(metadata.version(name), version)


if __name__ == "__main__":
    unittest.main()
