"""Two clones on two "machines" share build results through a real HTTP cache.

nginx (Debian's nginx-light, WebDAV PUT) serves as the cache on 127.0.0.1.
Clone A builds //models:all with --config=remote_cache and fills it; clone B,
in another folder, with another HOME, its virtualenv in another folder (a
copy) and a cold output base, must then take every checkpoint, contract,
export, conversion and metadata action from the cache, and `bazel aquery` must give
both clones the same action keys: no machine path is part of them.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from absl.testing import absltest

import testing

MODEL_MNEMONICS = {"SsdSyntheticCheckpoint", "SsdModelContract", "SsdExportGraph", "TocoConvert", "SsdTfliteMetadata"}


class RemoteCacheTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            self.fail("this test needs nginx with WebDAV: apt-get install nginx-light (.ci/run installs it)")
        self.tmp = self.create_tempdir().full_path
        root = os.path.join(self.tmp, "nginx")
        for folder in ("cache", "body", "temp"):
            os.makedirs(os.path.join(root, folder))
        self.port = testing.free_port()
        config = os.path.join(root, "nginx.conf")
        with open(config, "w") as out:
            out.write(f"""user root;
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/temp;
    fastcgi_temp_path {root}/temp;
    uwsgi_temp_path {root}/temp;
    scgi_temp_path {root}/temp;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            root {root}/cache;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 2g;
        }}
    }}
}}
""")
        self.server = subprocess.Popen([nginx, "-c", config, "-p", root], stderr=subprocess.PIPE)
        self.addCleanup(self.server.wait, 30)
        self.addCleanup(self.server.terminate)
        testing.wait_for_port(self.port, self.server, "nginx")

    def clone(self, name: str) -> str:
        return testing.clone_workspace(os.path.join(self.tmp, name))

    def other_machine(self) -> tuple[str, str]:
        """A HOME and a virtualenv folder other than this test's: a copy of the locked virtualenv."""
        home = os.path.join(self.tmp, "home_b")
        os.makedirs(home)
        venv = os.path.realpath(sys.prefix)
        venvs = os.path.join(self.tmp, "venvs_b")
        shutil.copytree(venv, os.path.join(venvs, os.path.basename(venv)), symlinks=True)
        return home, venvs

    def build(self, workspace: str, home: str = "", venv: str = "") -> tuple[float, list[dict]]:
        log = os.path.join(workspace, "execution_log.json")
        start = time.monotonic()
        result = testing.nested_bazel(workspace, "build", "--config=remote_cache",
                                      f"--remote_cache=http://127.0.0.1:{self.port}",
                                      f"--execution_log_json_file={log}", "//models:all", home=home, venv=venv)
        elapsed = time.monotonic() - start
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        return elapsed, [entry for entry in testing.execution_log(log) if entry["mnemonic"] in MODEL_MNEMONICS]

    def action_keys(self, workspace: str, home: str = "", venv: str = "") -> dict[tuple[str, str], str]:
        """(mnemonic, target) -> action key of every model action, from `bazel aquery`."""
        mnemonics = "|".join(sorted(MODEL_MNEMONICS))
        result = testing.nested_bazel(workspace, "aquery", "--output=jsonproto",
                                      f'mnemonic("{mnemonics}", //models:all)', home=home, venv=venv)
        self.assertEqual(result.returncode, 0, result.stderr[-5000:])
        graph = json.loads(result.stdout)
        labels = {target["id"]: target["label"] for target in graph["targets"]}
        return {(action["mnemonic"], labels[action["targetId"]]): action["actionKey"] for action in graph["actions"]}

    def test_second_clone_takes_every_model_action_from_the_cache(self):
        clone_a = self.clone("a")
        first_time, first = self.build(clone_a)
        self.assertNotEmpty(first)
        self.assertFalse(any(entry["remoteCacheHit"] for entry in first), "the cache starts empty")
        home, venv = self.other_machine()
        clone_b = self.clone("b")
        keys_a, keys_b = self.action_keys(clone_a), self.action_keys(clone_b, home, venv)
        self.assertEqual(len(keys_a), len(first))
        self.assertEqual(keys_b, keys_a)
        second_time, second = self.build(clone_b, home, venv)
        self.assertEqual(sorted(entry["progressMessage"] for entry in second),
                         sorted(entry["progressMessage"] for entry in first))
        misses = [entry["progressMessage"] for entry in second if not entry["remoteCacheHit"]]
        self.assertEqual(misses, [], "every model action of clone b must be a remote cache hit")
        print(f"remote cache: {len(second)}/{len(second)} model actions hit; "
              f"clone a {first_time:.0f} s, clone b {second_time:.0f} s")


if __name__ == "__main__":
    absltest.main()
