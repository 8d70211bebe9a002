"""tools/bazel runs a Bazel binary, never a script: not itself, not another checkout's launcher, not a wrapper.

Each case runs the launcher with a PATH of stand-ins: wrappers and other
checkouts' launchers (scripts that would run a tools/bazel again, as Debian's
/usr/bin/bazel does), and a "Bazel binary" that is a copy of /bin/echo, so
that what the launcher ran prints its arguments.
"""

import os
import shutil
import stat
import subprocess
import tempfile

from absl.testing import absltest

import testing

# What the launcher runs besides Bazel; not apt-get, so that no case can install anything.
UTILITIES = ("bash", "cat", "dirname", "dpkg-query", "env", "grep", "head", "ls", "readlink", "sort")
PROBE = "probe-argument"
WRAPPER = """#!/bin/sh
# Stands for Debian's /usr/bin/bazel or bazelisk-as-a-script: runs the workspace's tools/bazel.
exec "$LAUNCHER" "$@"
"""


def executable(path: str, content: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(content)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


class LauncherTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        with open(testing.runfile("tools/bazel"), "rb") as launcher:
            self.launcher_text = launcher.read()
        self.launcher = executable(os.path.join(self.tmp, "checkout_a", "tools", "bazel"), self.launcher_text)
        with open(shutil.which("echo"), "rb") as echo:
            self.binary = echo.read()

    def run_launcher(self, path: list[str], bazel_real: str = "") -> subprocess.CompletedProcess:
        """Runs the launcher with `path` and a folder of the utilities it uses (not this machine's Bazel) as PATH."""
        utilities = os.path.join(self.tmp, "utilities")
        if not os.path.isdir(utilities):
            os.makedirs(utilities)
            for name in UTILITIES:
                os.symlink(shutil.which(name), os.path.join(utilities, name))
        environment = {"PATH": os.pathsep.join(path + [utilities]), "LAUNCHER": self.launcher, "HOME": self.tmp}
        if bazel_real:
            environment["BAZEL_REAL"] = bazel_real
        # An argument that no branch of the launcher handles; the echo stand-in prints it back.
        return subprocess.run([self.launcher, PROBE], capture_output=True, text=True, timeout=60,
                              env=environment, cwd=os.path.dirname(os.path.dirname(self.launcher)))

    def test_skips_wrappers_and_other_checkouts_for_the_binary_beside_them(self):
        # Debian's layout: /usr/bin/bazel is a wrapper script, the binary is /usr/bin/bazel-4.
        debian = os.path.join(self.tmp, "debian")
        executable(os.path.join(debian, "bazel"), WRAPPER.encode())
        executable(os.path.join(debian, "bazel-4"), self.binary)
        other_checkout = executable(os.path.join(self.tmp, "checkout_b", "tools", "bazel"), self.launcher_text)
        other_path = os.path.join(self.tmp, "other_path")
        os.makedirs(other_path)
        os.symlink(other_checkout, os.path.join(other_path, "bazel"))
        result = self.run_launcher([other_path, debian], bazel_real=os.path.join(debian, "bazel-4.2.3"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), PROBE)

    def test_bazel_real_is_used_when_it_is_a_binary(self):
        binary = executable(os.path.join(self.tmp, "bazelisk_cache", "bin", "bazel"), self.binary)
        result = self.run_launcher([], bazel_real=binary)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), PROBE)

    def test_only_launchers_on_path_is_an_error_not_a_loop(self):
        other_checkout = executable(os.path.join(self.tmp, "checkout_b", "tools", "bazel"), self.launcher_text)
        loop = os.path.join(self.tmp, "loop")
        os.makedirs(loop)
        os.symlink(other_checkout, os.path.join(loop, "bazel"))
        os.symlink(self.launcher, os.path.join(loop, "bazel-5"))
        wrapper = executable(os.path.join(self.tmp, "wrapper", "bazel"), WRAPPER.encode())
        result = self.run_launcher([loop, os.path.dirname(wrapper)], bazel_real=wrapper)
        self.assertNotEqual(result.returncode, 0)
        self.assertNotIn(PROBE, result.stdout)
        self.assertIn("tools/bazel:", result.stderr)


if __name__ == "__main__":
    absltest.main()
