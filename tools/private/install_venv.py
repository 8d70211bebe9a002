"""Creates a virtualenv from a hashed pip lock file.

Usage: install_venv.py LOCK_FILE VENV_DIR

The marker file is written only after pip succeeded, so an interrupted
install is detected and redone from scratch; an exclusive lock keeps two
workspaces that share VENV_DIR from installing into it at the same time.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import venv

COMPLETE_MARKER = ".rules_ssd_tflite_complete"


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
        )
        with open(marker, "w") as out:
            out.write(lock_file + "\n")


if __name__ == "__main__":
    install(*sys.argv[1:])
