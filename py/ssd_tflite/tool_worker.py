"""A tool as a Bazel persistent worker: each WorkRequest runs like an action, in one long-lived process.

The protocol is persistent_worker's; here each request's arguments (the
params file's lines) are decoded and run. Bazel 4 keeps a worker whose
sources were edited, so from then on the worker runs each request in a new
process that loads the new code, as a one-off action would. (Quitting
instead raced with Bazel: it could hand the next action to the exiting
worker, which failed with "Worker process did not return a WorkResponse".)
"""

import gc
import os
import subprocess
import sys
import tempfile
from typing import Callable

from ssd_tflite import params_file, persistent_worker
from ssd_tflite.errors import UserError

RunRequest = Callable[[list[str]], tuple[int, str]]  # arguments -> (exit code, output if it failed)


def _stamp(path: str) -> tuple[str, int, int]:
    """(path, modification time, size); a file deleted since it was loaded stamps as (path, -1, -1)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return path, -1, -1
    return path, status.st_mtime_ns, status.st_size


def _source_stamp(script: str) -> list[tuple[str, int, int]]:
    """Modification time and size of the tool's script and of every module it loaded from beside it."""
    root = os.path.dirname(os.path.realpath(script)) + os.sep  # as Python put it on sys.path
    files = {script} | {module.__file__ for module in list(sys.modules.values())
                        if getattr(module, "__file__", None) and os.path.realpath(module.__file__).startswith(root)}
    return sorted(_stamp(path) for path in files)


def _run_fresh(script: str, arguments: list[str]) -> tuple[int, str]:
    """Runs the tool in a new process, as an action would (quiet unless it fails)."""
    with tempfile.NamedTemporaryFile("w", suffix=".params", encoding="utf-8") as params:
        params.write(params_file.text(arguments))
        params.flush()
        # Not the worker's stdin: that is the stream of WorkRequests.
        result = subprocess.run([sys.executable, script, "@" + params.name], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    output = result.stdout.decode(errors="replace") if result.returncode else ""
    if result.returncode < 0:
        output += f"{os.path.basename(script)}: killed by signal {-result.returncode}\n"
        return 1, output
    return result.returncode, output


def serve(script: str, tool: str, run_request: RunRequest) -> int:
    """Answers the WorkRequests on stdin with `run_request` until it closes; returns the exit code.

    `script` is the tool's, whose sources are watched; `tool` names it in errors.
    """
    started = _source_stamp(script)
    edited = False

    def handle(lines: list[str]) -> tuple[int, str]:
        nonlocal edited
        try:
            arguments = params_file.parse("\n".join(lines), "WorkRequest.arguments")
        except UserError as error:
            return 1, f"{tool}: error: {error}\n"
        edited = edited or _source_stamp(script) != started
        if edited:
            return _run_fresh(script, arguments)
        exit_code, output = run_request(arguments)
        # TensorFlow's graphs and converter leave reference cycles behind; without a full collection
        # a converter worker grew by about the model's size per request (ssdlite: 723 -> 1204 MiB in 40).
        gc.collect()
        return exit_code, output

    return persistent_worker.serve(handle, tool)
