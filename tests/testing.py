"""Helpers shared by the tests: runfiles, reference layouts, checkpoints from manifests."""

import ast
import collections
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ssd_tflite import checkpoint_files, flatbuffer_model, pipeline_schema, tflite_metadata

REFERENCE_MODELS = (
    "ssd_mobilenet_v1_quantized_zoo",
    "ssd_mobilenet_v1_float_zoo",
    "ssd_mobilenet_v2_quantized_finetune_5class",
    "ssd_mobilenet_v2_quantized_zoo",
    "ssdlite_mobilenet_v2_zoo",
    "ssd_resnet50_v1_fpn_finetune_11class",
)


def runfile(path: str) -> str:
    """Absolute path of a file of this workspace in the test's runfiles."""
    return os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], path)


@functools.cache
def _manifest() -> dict:
    with open(runfile("models/manifest.json")) as manifest:
        return json.load(manifest)


@functools.cache
def models() -> dict[str, dict]:
    """name -> entry of every //models model, from models/manifest.json (models/models.bzl's model_manifest).

    An entry holds the workspace-relative paths of the model's files ("tflite", "labels", "contract",
    "graph", "pipeline_config"), its "inference_type", whether its graph is "calibrated", its
    "default_ranges", and the "zoo_repository" its checkpoint comes from.
    """
    return {model["name"]: model for model in _manifest()["models"]}


def synthetic_zoo_checkpoints() -> dict[str, str]:
    """Model-zoo repository -> the workspace-relative prefix of the synthetic checkpoint standing in for it."""
    return _manifest()["synthetic_zoo_checkpoints"]


def model_file(target: str, kind: str = "tflite") -> str:
    """The runfile of //models:`target`'s `kind` (tflite, labels, contract, graph or pipeline_config)."""
    return runfile(models()[target][kind])


def testdata(name: str) -> str:
    return runfile(os.path.join("tests", "testdata", name))


def read_manifest(model: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of every variable of a real checkpoint (testdata/<model>.manifest.tsv)."""
    manifest = {}
    with open(testdata(model + ".manifest.tsv")) as lines:
        for line in lines:
            name, shape, dtype = line.rstrip("\n").split("\t")
            manifest[name] = (tuple(ast.literal_eval(shape)), dtype)
    return manifest


def write_manifest_checkpoint(prefix: str, manifest: dict[str, tuple[tuple[int, ...], str]], seed: int = 0) -> None:
    """A checkpoint with exactly the manifest's variables, filled with random values."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, (shape, dtype) in manifest.items():
        value = rng.normal(0.0, 0.05, shape)
        if name.endswith("moving_variance"):
            value = np.abs(value) + 0.5
        values[name] = value.astype(dtype)
    checkpoint_files.write_checkpoint(prefix, values)


def without_metadata(path: str) -> bytes:
    """The .tflite at `path` without its TFLITE_METADATA buffer and labels zip, repacked."""
    model = flatbuffer_model.read(path)
    for entry in model.metadata or []:
        if flatbuffer_model.tensor_name(entry) == tflite_metadata.METADATA_NAME:
            model.buffers[entry.buffer].data = None
    model.metadata = [entry for entry in model.metadata or []
                      if flatbuffer_model.tensor_name(entry) != tflite_metadata.METADATA_NAME]
    return flatbuffer_model.pack(model)


def venv_cache() -> str:
    """The folder of this test's locked virtualenv (what RULES_SSD_TFLITE_VENV_CACHE names)."""
    return os.path.dirname(os.path.realpath(sys.prefix))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    """Returns once 127.0.0.1:`port` accepts connections; raises naming `what` if `process` died first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} (exit {process.poll()})")


def clone_workspace(folder: str) -> str:
    """A copy of this workspace (no bazel-* links, .git or user.bazelrc) as `folder`/rules_ssd_tflite."""
    source = os.path.dirname(os.path.realpath(runfile("WORKSPACE")))
    target = os.path.join(folder, "rules_ssd_tflite")
    shutil.copytree(source, target, symlinks=True,
                    ignore=shutil.ignore_patterns("bazel-*", ".git", "__pycache__", "user.bazelrc"))
    return target


def starlark_constants() -> dict:
    """The constants of tools/private/constants.bzl, which holds only literal assignments (valid Python)."""
    namespace: dict = {}
    with open(runfile("tools/private/constants.bzl")) as constants:
        exec(constants.read(), {}, namespace)  # noqa: S102  (our own file of literals)
    return namespace


def nested_bazel(workspace: str, command: str, *args: str, home: str = "",
                 venv: str = "") -> subprocess.CompletedProcess:
    """Runs a Bazel inside the test on `workspace`, sharing this test's locked virtualenv.

    Keeps the system bazelrc (Debian's Bazel needs its install base from it),
    skips the user's, and keeps the server's files under the test's tmpdir.
    `home` (default: the tmpdir) is the HOME Bazel runs with, `venv` the
    RULES_SSD_TFLITE_VENV_CACHE folder (default: this test's own).
    """
    tmp = os.environ["TEST_TMPDIR"]
    # A server idle for a minute exits, with its persistent workers: none outlives the test for long.
    startup = [shutil.which("bazel") or "/usr/bin/bazel", "--nohome_rc", "--max_idle_secs=60",
               f"--output_user_root={os.path.join(tmp, 'bazel_root')}"]
    options = ["--nosandbox_debug", f"--repository_cache={os.path.join(workspace, 'repository_cache')}",
               # Share the locked virtualenv of this test's own interpreter: no pip here.
               f"--repo_env=RULES_SSD_TFLITE_VENV_CACHE={venv or venv_cache()}"]
    with_options = command in ("build", "aquery", "run", "test")
    return subprocess.run(startup + [command] + (options if with_options else []) + list(args),
                          cwd=workspace, env=dict(os.environ, HOME=home or tmp),
                          capture_output=True, text=True, timeout=1800)


def execution_log(path: str) -> list[dict]:
    """The spawns of a `--execution_log_json_file` (concatenated JSON objects)."""
    with open(path) as log_file:
        text = log_file.read()
    decoder, position, entries = json.JSONDecoder(), 0, []
    while text[position:].strip():
        entry, position = decoder.raw_decode(text, position)
        entries.append(entry)
        position = len(text) - len(text[position:].lstrip())
    return entries


def spawns_by_target(entries: list[dict]) -> collections.Counter:
    """Executed spawns per target; Bazel 4's log has no target field, our progress messages name it."""
    counts = collections.Counter()
    for entry in entries:
        label = re.search(r"(//[^ ]+)", entry["progressMessage"])
        counts[label.group(1) if label else entry["mnemonic"]] += 1
    return counts


_NOT_NUMBERS = (FieldDescriptor.CPPTYPE_MESSAGE, FieldDescriptor.CPPTYPE_ENUM, FieldDescriptor.CPPTYPE_BOOL,
                FieldDescriptor.CPPTYPE_STRING)


def numeric_fields(message: Descriptor = pipeline_schema.TrainEvalPipelineConfig.DESCRIPTOR,
                   prefix: str = "") -> dict[str, FieldDescriptor]:
    """Path -> descriptor of every number (int or float, single or repeated) of our config schema."""
    fields = {}
    for field in message.fields:
        if field.message_type is not None:
            fields.update(numeric_fields(field.message_type, f"{prefix}{field.name}."))
        elif field.cpp_type not in _NOT_NUMBERS:
            fields[prefix + field.name] = field
    return fields
