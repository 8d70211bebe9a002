"""Every model action runs on a real BuildGrid server, through workers that cannot see the host.

BuildGrid (from PyPI) serves CAS, action cache, execution and bots on
127.0.0.1; two tests/remote/test_worker.py processes run the leased actions
under bubblewrap, in a root that holds only the action's inputs, /usr and the
stand-in for the worker image (the locked virtualenv at the path
tools/remote/Dockerfile installs it to, and the interpreter it was made from).
A clone of this workspace then builds //models:all three times:

1. locally, with persistent workers, for reference;
2. with --config=remote_exec: every model action must run remotely, and every
   output must equal the local build's, byte for byte;
3. the same after `bazel clean`: every model action must be a remote cache hit.

A probe genrule lists which of the host's folders (home, virtualenvs, this
workspace, the home's cache) it can see: all of them locally, none on the workers.
"""

import configparser
import hashlib
import os
import shutil
import subprocess
import sys
import time

from absl.testing import absltest

import testing

MODEL_MNEMONICS = {"SsdSyntheticCheckpoint", "SsdModelContract", "SsdExportGraph", "TocoConvert", "SsdTfliteMetadata"}
WORKERS = 2


def base_interpreter_prefix(venv: str) -> str:
    """The installation the virtualenv's python3 links to (pyvenv.cfg's home is its bin folder)."""
    parser = configparser.ConfigParser()
    with open(os.path.join(venv, "pyvenv.cfg")) as cfg:
        parser.read_string("[venv]\n" + cfg.read())
    return os.path.dirname(os.path.realpath(parser["venv"]["home"]))


class RemoteExecutionTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        if not shutil.which("bwrap"):
            self.fail("this test needs bubblewrap: apt-get install bubblewrap (.ci/run installs it)")
        self.tmp = self.create_tempdir().full_path
        self.seconds: list[float] = []
        buildgrid = testing.runfile("external/buildgrid_python/python")
        self.port = testing.free_port()
        with open(testing.runfile("tests/remote/buildgrid.yml")) as template:
            config = os.path.join(self.tmp, "buildgrid.yml")
            with open(config, "w") as out:
                out.write(template.read().replace("{port}", str(self.port)))
        self.server_log = open(os.path.join(self.tmp, "buildgrid.log"), "w")
        self.addCleanup(self.server_log.close)
        server = subprocess.Popen([buildgrid, "-c", "from buildgrid.server.app import cli; cli()", "server", "start",
                                   config], stdout=self.server_log, stderr=subprocess.STDOUT)
        self.stop_on_cleanup(server)
        testing.wait_for_port(self.port, server, "BuildGrid")

        constants = testing.starlark_constants()
        venv = os.path.realpath(sys.prefix)  # this test runs in the rules' own environment
        # The locked virtualenv, this workspace, and the home's cache (virtualenvs, Bazel output bases).
        self.host_folders = [venv, os.path.dirname(os.path.realpath(testing.runfile("WORKSPACE"))),
                             os.path.expanduser("~/.cache")]
        mounts = [f"--image={venv}:{constants['WORKER_VENVS_ROOT']}/{os.path.basename(venv)}"]
        prefix = base_interpreter_prefix(venv)
        if not prefix.startswith("/usr/"):
            mounts.append(f"--image={prefix}")
        for index in range(WORKERS):
            work_root = os.path.join(self.tmp, f"worker_{index}")
            os.makedirs(work_root)
            worker = subprocess.Popen(
                [buildgrid, testing.runfile("tests/remote/test_worker.py"), f"--server=127.0.0.1:{self.port}",
                 f"--container_image={constants['WORKER_IMAGE_PREFIX']}{os.path.basename(venv)}",
                 f"--work_root={work_root}", *mounts], stdout=self.server_log, stderr=subprocess.STDOUT)
            self.stop_on_cleanup(worker)

    def stop_on_cleanup(self, process: subprocess.Popen) -> None:
        self.addCleanup(process.wait, 30)
        self.addCleanup(process.terminate)

    def workspace_with_probe(self) -> str:
        workspace = testing.clone_workspace(self.tmp)
        os.makedirs(os.path.join(workspace, "probe"))
        checks = " ".join(f'test -e "{folder}" && echo "{folder}";' for folder in self.host_folders)
        with open(os.path.join(workspace, "probe", "BUILD"), "w") as out:
            out.write(f"""genrule(
    name = "host_folders",
    outs = ["host_folders.txt"],
    cmd = '({checks} true) > $@',
)
""")
        return workspace

    def build(self, workspace: str, *options: str) -> list[dict]:
        log = os.path.join(self.tmp, "execution_log.json")
        start = time.monotonic()
        result = testing.nested_bazel(workspace, "build", f"--execution_log_json_file={log}", *options,
                                      "//models:all", "//probe:host_folders")
        self.seconds.append(time.monotonic() - start)
        self.server_log.flush()
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        return testing.execution_log(log)

    def outputs(self, workspace: str) -> dict[str, str]:
        """sha256 of every file the models' build wrote under bazel-bin/models."""
        root = os.path.join(workspace, "bazel-bin", "models")
        digests = {}
        for folder, _, files in os.walk(root):
            for name in files:
                if not name.endswith(".params"):
                    with open(os.path.join(folder, name), "rb") as content:
                        digests[os.path.relpath(os.path.join(folder, name), root)] = hashlib.sha256(
                            content.read()).hexdigest()
        return digests

    def probe(self, workspace: str) -> list[str]:
        with open(os.path.join(workspace, "bazel-bin", "probe", "host_folders.txt")) as seen:
            return seen.read().split()

    def runners(self, log: list[dict]) -> dict[str, str]:
        return {entry["progressMessage"]: entry["runner"] for entry in log if entry["mnemonic"] in MODEL_MNEMONICS}

    def test_model_actions_run_remotely_in_isolation_and_match_a_local_build(self):
        workspace = self.workspace_with_probe()
        local = self.runners(self.build(workspace))
        self.assertGreaterEqual(len(local), 39)
        self.assertEqual({runner for message, runner in local.items() if "TFLite graph" in message}, {"worker"})
        self.assertEqual(self.probe(workspace), self.host_folders, "locally the probe sees the host")
        local_outputs = self.outputs(workspace)

        remote_options = ("--config=remote_exec", f"--remote_executor=grpc://127.0.0.1:{self.port}")
        self.assertEqual(testing.nested_bazel(workspace, "clean").returncode, 0)
        remote = self.runners(self.build(workspace, *remote_options))
        self.assertEqual(set(remote), set(local))
        self.assertEqual({message for message, runner in remote.items() if runner != "remote"}, set(),
                         "every model action runs on a BuildGrid worker")
        self.assertEqual(self.probe(workspace), [], "the workers hide the host's folders")
        self.assertEqual(self.outputs(workspace), local_outputs)

        self.assertEqual(testing.nested_bazel(workspace, "clean").returncode, 0)
        cached = self.runners(self.build(workspace, *remote_options))
        self.assertEqual({message for message, runner in cached.items() if runner != "remote cache hit"}, set())
        print(f"remote execution: {len(remote)} model actions ran on {WORKERS} BuildGrid workers, "
              f"{len(cached)} remote cache hits after a clean, {len(local_outputs)} outputs equal to the local "
              "build; local build (persistent workers) {:.0f} s, remote {:.0f} s, remote cached {:.0f} s".format(
                  *self.seconds))


if __name__ == "__main__":
    absltest.main()
