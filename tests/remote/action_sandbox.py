"""What test_worker.py checks and bounds for each action, apart from BuildGrid: its paths, outputs and time.

An action may only write inside its input root: an output path that is
absolute or climbs with `..` is refused before the action runs, and so is one
whose folder an input symlink leads out of the root. After the run an output
is returned as what it is (a regular file, a folder, or a symlink, never
followed) and only if its folder still resolves inside the root. An action
runs in a process group of its own, killed whole when its time is up.
"""

import contextlib
import os
import signal
import stat
import subprocess
from typing import Optional

# For an Action without a `timeout` (Bazel sets none on build actions): the longest model action
# (a calibrated ResNet50 FPN export) takes about 2 minutes on 2 cores, and 900 s is Bazel's own
# timeout of a "long" test; a hung action then frees its worker instead of holding it for good.
DEFAULT_TIMEOUT_SECONDS = 900.0


class Refused(Exception):
    """A path the worker does not run an action with, or an output it does not return; the message names it."""


def _escape(path: str) -> str:
    """Why `path`, relative to the input root, could name something outside it; empty if it cannot."""
    if not path:
        return "is empty"
    if os.path.isabs(path):
        return "is absolute"
    if ".." in path.split("/"):
        return "climbs out with '..'"
    return ""


def check_paths(working_directory: str, outputs: list[str]) -> None:
    """Refuses a working directory or output path that could lead out of the input root."""
    if working_directory and (reason := _escape(working_directory)):
        raise Refused(f"working directory {working_directory!r} {reason}")
    for path in outputs:
        if reason := _escape(path):
            raise Refused(f"output path {path!r} {reason}")


def inside(root: str, path: str) -> bool:
    """Whether `path`, with its symlinks resolved, is `root` or in it."""
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def make_output_folders(input_root: str, working_directory: str, outputs: list[str]) -> None:
    """Creates the folders of each checked output one level at a time, none through a symlink out of the root."""
    for path in outputs:
        folder = input_root
        for name in os.path.join(working_directory, path).split("/")[:-1]:
            folder = os.path.join(folder, name)
            if not inside(input_root, folder):
                raise Refused(f"output path {path!r}: folder {name!r} leads out of the input root")
            os.makedirs(folder, exist_ok=True)


def returned_as(input_root: str, working_directory: str, path: str, folder: bool) -> Optional[str]:
    """How the output `path` is returned: "symlink" (never followed), "file" or "folder"; None if it is missing."""
    full = os.path.join(input_root, working_directory, path)
    if not inside(input_root, os.path.dirname(full)):
        raise Refused(f"output path {path!r} leads out of the input root through a symlink")
    try:
        mode = os.lstat(full).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "symlink"
    if folder:
        if not stat.S_ISDIR(mode):
            raise Refused(f"output {path!r} is not a folder")
        return "folder"
    if not stat.S_ISREG(mode):
        raise Refused(f"output {path!r} is not a regular file")
    return "file"


def timeout_seconds(duration) -> float:
    """An Action's `timeout` (a protobuf Duration) in seconds, or DEFAULT_TIMEOUT_SECONDS if it sets none."""
    seconds = duration.seconds + duration.nanos / 1e9
    return seconds if seconds > 0 else DEFAULT_TIMEOUT_SECONDS


def run_with_timeout(argv: list[str], seconds: float) -> tuple[Optional[int], bytes, bytes]:
    """Runs `argv` as a process group of its own: (exit code, stdout, stderr), exit code None if it timed out.

    On timeout the whole group is killed and the output so far returned. (Under
    bubblewrap the sandboxed command has a session of its own, but dies with
    bwrap: --die-with-parent, and the end of its PID namespace.)
    """
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # the group ended just now
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return None, stdout, stderr
    return process.returncode, stdout, stderr
