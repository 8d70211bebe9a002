"""A monorepo loads @rules_ssd_tflite: zoo tarballs through http_archive, incremental builds.

The synthetic checkpoints are packed as tarballs named and laid out like the
real ones, served from 127.0.0.1, and built in a scratch workspace by a
nested Bazel, through the same http_archive declarations users get.
"""

import functools
import hashlib
import http.server
import os
import re
import shutil
import tarfile
import threading

from absl.testing import absltest, parameterized
from ai_edge_litert.interpreter import Interpreter

import testing
from ssd_tflite import checkpoint_files

# repository -> a //models target built from its tarball (or, by default, from the synthetic checkpoint
# that stands in for the tarball here): its first model without calibration, the quickest to build.
STAND_INS = {}
for _name, _model in testing.models().items():
    if _model["zoo_repository"] and not _model["calibrated"]:
        STAND_INS.setdefault(_model["zoo_repository"], _name)
CHECKPOINT_FILES = (checkpoint_files.INDEX_FILE, checkpoint_files.DATA_SHARD, checkpoint_files.STATE_FILE,
                    checkpoint_files.CONFIG_FILE)
# The host's model: the classic uint8 recipe on the served SSD MobileNet v1 tarball.
DETECT_BUILD = """load("@rules_ssd_tflite//tools:defs.bzl", "ssd_tflite_graph", "ssd_tflite_model")

ssd_tflite_graph(
    name = "graph",
    checkpoint = "@ssd_mobilenet_v1_quantized_coco//:checkpoint",
)

ssd_tflite_model(
    name = "detect",
    default_ranges = ["0", "255"],
    graph = ":graph",
    inference_type = "QUANTIZED_UINT8",
)
"""


def zoo_archives() -> dict[str, tuple[str, str]]:
    """repository -> (archive file, folder inside it), as declared in tools/private/zoo.bzl."""
    with open(testing.runfile("tools/private/zoo.bzl")) as source:
        entries = re.findall(r'"(\w+)": \(\s*"([^"]+)",\s*"([^"]+)",', source.read())
    return {name: (archive, folder) for name, archive, folder in entries}


# The host's own Python: the base interpreter our virtualenv was made from, which has no TensorFlow.
HOST_PYTHON = "/usr/bin/python3"
HOST_PYTHON_BUILD = """load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

py_runtime(
    name = "runtime",
    interpreter_path = "{python}",
    python_version = "PY3",
    stub_shebang = "#!/usr/bin/env python3",
)

py_runtime_pair(
    name = "pair",
    py3_runtime = ":runtime",
)

toolchain(
    name = "toolchain",
    toolchain = ":pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []

    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        _QuietHandler.requested.append(self.path)


class MonorepoTest(parameterized.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = os.environ["TEST_TMPDIR"]
        cls.served = os.path.join(cls.tmp, "served")
        os.makedirs(cls.served, exist_ok=True)
        cls.sha256 = {}
        for repository, (archive, folder) in zoo_archives().items():
            checkpoint_dir = os.path.dirname(testing.runfile(testing.synthetic_zoo_checkpoints()[repository]))
            path = os.path.join(cls.served, archive)
            with tarfile.open(path, "w:gz", dereference=True) as tar:
                for name in CHECKPOINT_FILES:
                    tar.add(os.path.join(checkpoint_dir, name), arcname=f"{folder}/{name}")
            with open(path, "rb") as packed:
                cls.sha256[repository] = hashlib.sha256(packed.read()).hexdigest()
        handler = functools.partial(_QuietHandler, directory=cls.served)
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.mirror = f"http://127.0.0.1:{cls.server.server_port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        super().tearDownClass()

    def monorepo(self, name: str, sha256: dict[str, str], build_file: str = "", host_python: str = "",
                 mirror: str = "", allow_unpinned: tuple[str, ...] = ()) -> str:
        """A scratch workspace that loads this repository as @rules_ssd_tflite.

        `host_python` "before" or "after" registers a Python toolchain of the host's own
        (the system python3) before or after ours, as monorepos do. `mirror` replaces the
        test server's address.
        """
        workspace = os.path.join(self.tmp, name)
        os.makedirs(workspace, exist_ok=True)
        rules_root = os.path.dirname(os.path.realpath(testing.runfile("WORKSPACE")))
        with open(os.path.join(workspace, "WORKSPACE"), "w") as out:
            host_toolchain = 'register_toolchains("//host_python:toolchain")\n'
            out.write(f"""workspace(name = "monorepo")

local_repository(name = "rules_ssd_tflite", path = "{rules_root}")

load("@rules_ssd_tflite//tools:repositories.bzl", "rules_ssd_tflite_dependencies", "rules_ssd_tflite_register_toolchains")

rules_ssd_tflite_dependencies(zoo_mirrors = ["{mirror or self.mirror}"], zoo_sha256 = {sha256!r}, allow_unpinned = {list(allow_unpinned)!r})
{host_toolchain if host_python == "before" else ""}
rules_ssd_tflite_register_toolchains()
{host_toolchain if host_python == "after" else ""}""")
        if host_python:
            os.makedirs(os.path.join(workspace, "host_python"), exist_ok=True)
            with open(os.path.join(workspace, "host_python", "BUILD"), "w") as out:
                out.write(HOST_PYTHON_BUILD.format(python=HOST_PYTHON))
        with open(os.path.join(workspace, "BUILD"), "w") as out:
            out.write(build_file or DETECT_BUILD)
        return workspace

    def test_monorepo_builds_every_model_from_served_tarballs(self):
        workspace = self.monorepo("monorepo", self.sha256)
        targets = [f"@rules_ssd_tflite//models:{target}" for target in STAND_INS.values()]
        result = testing.nested_bazel(workspace, "build", "--@rules_ssd_tflite//tools:checkpoint_source=zoo", "//:detect", *targets)
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        for archive, _ in zoo_archives().values():
            self.assertIn("/" + archive, _QuietHandler.requested)
        bin_dir = testing.nested_bazel(workspace, "info", "bazel-bin").stdout.strip()
        models = [os.path.join(bin_dir, "detect.tflite")] + [
            os.path.join(bin_dir, "external", "rules_ssd_tflite", "models", f"{target}.tflite") for target in STAND_INS.values()]
        for model in models:
            interpreter = Interpreter(model_path=model)
            interpreter.allocate_tensors()
            self.assertEqual(interpreter.get_input_details()[0]["name"], "normalized_input_image_tensor")
        # Reproducible: the same checkpoint gives the same model as this workspace's own build, whose
        # metadata differs only in its description (the checkpoint's label, and synthetic or not).
        for target, model in zip(STAND_INS.values(), models[1:]):
            self.assertEqual(testing.without_metadata(model),
                             testing.without_metadata(testing.model_file(target)), target)

    @parameterized.parameters("before", "after")
    def test_host_python_toolchain_keeps_its_targets_and_ours_keep_tensorflow(self, order):
        """A host registering its own Python toolchain, before or after ours: both keep their Python."""
        build_file = DETECT_BUILD + """
py_binary(
    name = "which_python",
    srcs = ["which_python.py"],
)
"""
        workspace = self.monorepo(f"host_python_{order}", self.sha256, build_file, host_python=order)
        with open(os.path.join(workspace, "which_python.py"), "w") as out:
            out.write("import sys\nprint('host python:', sys.executable)\n")
        result = testing.nested_bazel(workspace, "build", "--@rules_ssd_tflite//tools:checkpoint_source=zoo", "//:detect")
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        run = testing.nested_bazel(workspace, "run", "//:which_python")
        self.assertEqual(run.returncode, 0, run.stderr[-5000:])
        self.assertIn(f"host python: {HOST_PYTHON}", run.stdout)
        self.assertNotIn("rules_ssd_tflite", run.stdout)

    def test_corrupt_tarball_fails_naming_the_archive(self):
        archive, _ = zoo_archives()["ssdlite_mobilenet_v2_coco"]
        corrupt_dir = os.path.join(self.served, "corrupt")
        os.makedirs(corrupt_dir, exist_ok=True)
        with open(os.path.join(self.served, archive), "rb") as good:
            truncated = good.read()[:4096]  # a download cut short
        with open(os.path.join(corrupt_dir, archive), "wb") as bad:
            bad.write(truncated)
        workspace = self.monorepo("corrupt", dict(self.sha256, ssdlite_mobilenet_v2_coco=hashlib.sha256(truncated).hexdigest()),
                                  mirror=f"{self.mirror}/corrupt")
        result = testing.nested_bazel(workspace, "build", "--@rules_ssd_tflite//tools:checkpoint_source=zoo",
                            "@rules_ssd_tflite//models:ssdlite_mobilenet_v2_tflite")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ssdlite_mobilenet_v2_coco", result.stderr)
        self.assertRegex(result.stderr, r"(?i)(error extracting|unexpected end|not in gzip format|truncated|EOF)")
        bin_dir = testing.nested_bazel(workspace, "info", "bazel-bin").stdout.strip()
        self.assertFalse(os.path.exists(os.path.join(bin_dir, "external", "rules_ssd_tflite", "models",
                                                     "ssdlite_mobilenet_v2_tflite.tflite")))

    def test_wrong_sha256_fails_with_bazels_checksum_error(self):
        wrong = dict(self.sha256, ssdlite_mobilenet_v2_coco="0" * 64)
        workspace = self.monorepo("wrong_sha", wrong)
        result = testing.nested_bazel(workspace, "build", "--@rules_ssd_tflite//tools:checkpoint_source=zoo",
                            "@rules_ssd_tflite//models:ssdlite_mobilenet_v2_tflite")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"Checksum was {self.sha256['ssdlite_mobilenet_v2_coco']} but wanted {'0' * 64}", result.stderr)

    def test_allow_unpinned_checks_the_tarball_and_prints_its_sha256(self):
        repository = "ssd_mobilenet_v2_quantized_coco"  # no public pin
        unpinned = {name: digest for name, digest in self.sha256.items() if name != repository}
        # Bazel downloads plain http only with a checksum, so the unpinned tarball comes from a file:// mirror.
        workspace = self.monorepo("unpinned", unpinned, mirror=f"file://{self.served}", allow_unpinned=(repository,))
        target = "@rules_ssd_tflite//models:" + STAND_INS[repository]
        result = testing.nested_bazel(workspace, "build", "--@rules_ssd_tflite//tools:checkpoint_source=zoo", target)
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        self.assertIn(f"{repository}: downloaded unpinned (allow_unpinned), sha256 {self.sha256[repository]}", result.stderr)
        self.assertIn(f'zoo_sha256 = {{"{repository}": "{self.sha256[repository]}"}}', result.stderr)
        # A tarball that holds no checkpoint (an error page, another archive) is refused, naming what is missing.
        archive, folder = zoo_archives()[repository]
        elsewhere = os.path.join(self.served, "not_a_checkpoint")
        os.makedirs(elsewhere, exist_ok=True)
        with tarfile.open(os.path.join(elsewhere, archive), "w:gz", dereference=True) as tar:
            tar.add(testing.testdata("ssdlite_mobilenet_v2_zoo.pipeline.config"), arcname=f"{folder}/pipeline.config")
        workspace = self.monorepo("not_a_checkpoint", unpinned, mirror=f"file://{elsewhere}", allow_unpinned=(repository,))
        result = testing.nested_bazel(workspace, "build", "--@rules_ssd_tflite//tools:checkpoint_source=zoo", target)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"{repository}: the tarball from file://{elsewhere}/{archive}", result.stderr)
        self.assertIn(f"has no model.ckpt.index in {folder}/: not a model-zoo checkpoint", result.stderr)

    def spawns_by_target(self, workspace: str, *targets: str):
        """Builds and counts the executed actions (spawns) of each target."""
        log = os.path.join(workspace, "execution_log.json")
        result = testing.nested_bazel(workspace, "build", f"--execution_log_json_file={log}", *targets)
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        return testing.spawns_by_target(testing.execution_log(log))

    def test_no_op_rebuild_and_one_changed_config(self):
        build_file = """load("@rules_ssd_tflite//tools:defs.bzl", "ssd_tflite_graph", "ssd_tflite_model", "synthetic_ssd_checkpoint")

[synthetic_ssd_checkpoint(name = name + "_checkpoint", pipeline_config = name + ".config") for name in ("a", "b")]

[ssd_tflite_graph(name = name + "_graph", checkpoint = name + "_checkpoint") for name in ("a", "b")]

[ssd_tflite_model(name = name, graph = name + "_graph") for name in ("a", "b")]
"""
        workspace = self.monorepo("incremental", self.sha256, build_file)
        for name in ("a", "b"):
            shutil.copyfile(testing.testdata("ssdlite_mobilenet_v2_zoo.pipeline.config"),
                            os.path.join(workspace, name + ".config"))
        first = self.spawns_by_target(workspace, "//:a", "//:b")
        self.assertEqual(first["//:a"], first["//:b"])
        self.assertEqual(first["//:a"], 3, first)  # contract, convert, metadata
        self.assertEqual(first["//:a_graph"], 1, first)  # export
        self.assertEqual(sum(self.spawns_by_target(workspace, "//:a", "//:b").values()), 0, "no-op rebuild")
        config = os.path.join(workspace, "a.config")
        with open(config) as original:
            text = original.read()
        with open(config, "w") as changed:
            changed.write(text.replace("iou_threshold: 0.600000023842", "iou_threshold: 0.5"))
        third = self.spawns_by_target(workspace, "//:a", "//:b")
        self.assertEqual(set(third), {"//:a", "//:a_graph", "//:a_checkpoint"}, third)
        print(f"actions: first build {dict(first)}, no-op 0, after editing a.config {dict(third)}")


if __name__ == "__main__":
    absltest.main()
