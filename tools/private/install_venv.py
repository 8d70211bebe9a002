"""Creates a virtualenv from a hashed pip lock file, in a folder named after the lock and the Python.

Usage:
  install_venv.py name LOCK_FILE           prints the environment's name, py<X.Y>-<digest>
  install_venv.py install LOCK_FILE ROOT   installs it as ROOT/<name> (if not there) and prints that path

The name is the same wherever the lock is installed: in a machine's cache by
the `python_venv` repository rule, or in a remote-execution worker image
(tools/remote/Dockerfile) under /opt/rules_ssd_tflite/venvs, where the
rules' interpreter wrapper looks for it. The marker file is written only
after pip succeeded, so an interrupted install is redone from scratch; an
exclusive lock keeps two workspaces sharing ROOT from installing at once.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv

COMPLETE_MARKER = ".rules_ssd_tflite_complete"


def environment_name(lock_file: str) -> str:
    """py<major.minor>-<first 24 hex digits of sha256(lock bytes + version)> for this interpreter."""
    version = "%d.%d" % sys.version_info[:2]
    with open(lock_file, "rb") as lock:
        digest = hashlib.sha256(lock.read() + version.encode()).hexdigest()[:24]
    return f"py{version}-{digest}"


def install(lock_file: str, venv_dir: str) -> None:
    """Installs lock_file into venv_dir unless a complete environment is there."""
    os.makedirs(os.path.dirname(venv_dir), exist_ok=True)
    with open(venv_dir + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = os.path.join(venv_dir, COMPLETE_MARKER)
        if os.path.exists(marker):
            return
        shutil.rmtree(venv_dir, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, symlinks=True).create(venv_dir)
        subprocess.run(
            [os.path.join(venv_dir, "bin", "python3"), "-m", "pip", "install",
             "--no-input", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--require-hashes", "-r", lock_file],
            check=True,
            stdout=sys.stderr,  # stdout carries the result
        )
        with open(marker, "w") as out:
            out.write(lock_file + "\n")


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "name":
        print(environment_name(argv[2]))
    elif len(argv) == 4 and argv[1] == "install":
        venv_dir = os.path.join(argv[3], environment_name(argv[2]))
        install(argv[2], venv_dir)
        print(venv_dir)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
