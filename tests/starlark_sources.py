"""This repository's Starlark files, found by label, for the tests that evaluate them with starlark-pyo3."""

import os
from typing import Optional

REPOSITORY = "rules_ssd_tflite"


def source_root() -> str:
    """This repository's files: the test's runfiles under Bazel, else the source tree."""
    if "TEST_SRCDIR" in os.environ:
        return os.path.join(os.environ["TEST_SRCDIR"], os.environ.get("TEST_WORKSPACE", REPOSITORY))
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_source(path: str) -> str:
    """The text of the repository-relative `path`."""
    with open(os.path.join(source_root(), path)) as source:
        return source.read()


def file_of_label(label: str, package: str) -> Optional[str]:
    """The repository path of a file label of this repository (`//pkg:file`, `@rules_ssd_tflite//pkg:file`,
    or `:file` in the folder `package`), or None for another repository's."""
    if label.startswith("@"):
        repository, _, label = label[1:].partition("//")
        if repository.lstrip("@") != REPOSITORY:
            return None
        label = "//" + label
    if label.startswith(":"):
        return os.path.join(package, label[1:])
    folder, _, name = label[2:].partition(":")
    return os.path.join(folder, name)
