"""How every command-line tool runs: absl flags, clean errors, quiet Bazel actions (tool_worker: as workers)."""

import atexit
import os
import signal
import sys
import traceback
from typing import Callable

# TensorFlow's C++ start-up banner is noise for these tools; set before TF loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402  (after the environment is set)

from ssd_tflite import captured_output, params_file, tool_worker  # noqa: E402
from ssd_tflite.errors import UserError  # noqa: E402
from ssd_tflite.tflite_graph import PostProcessingFlags  # noqa: E402


class _Terminated(SystemExit):
    """SIGTERM (how Bazel stops workers): ends the process, even inside a request that catches SystemExit."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated(128 + signum)


def _is_action(arguments: list[str]) -> bool:
    """Whether the rules run this tool as a one-off action: its flags in one params file."""
    return len(arguments) == 1 and arguments[0].startswith("@")


def _show_import_output() -> None:
    if _IMPORT_OUTPUT is not None and not _IMPORT_OUTPUT.stopped:
        sys.stderr.write(_IMPORT_OUTPUT.stop())  # the tool failed before run(): show everything


# An action shows only its run's output, and only if it fails. Tools import this module first, so
# this capture holds what TensorFlow logs while it is imported: dropped, unless the import fails.
_IMPORT_OUTPUT = captured_output.CapturedOutput() if _is_action(sys.argv[1:]) else None
atexit.register(_show_import_output)


def define_postprocessing_flags() -> None:
    """The export's post-processing flags, with the upstream names and defaults."""
    defaults = PostProcessingFlags()
    flags.DEFINE_integer("max_detections", defaults.max_detections, "Maximum number of detections (boxes) to show.")
    flags.DEFINE_integer("max_classes_per_detection", defaults.max_classes_per_detection,
                         "Number of classes to display per detection box.")
    flags.DEFINE_integer("detections_per_class", defaults.detections_per_class,
                         "Number of anchors used per class in regular NMS.")
    flags.DEFINE_bool("use_regular_nms", defaults.use_regular_nms,
                      "Per-class (regular) NMS instead of the faster class-agnostic NMS.")


def postprocessing_from_flags() -> PostProcessingFlags:
    values = flags.FLAGS
    return PostProcessingFlags(values.max_detections, values.max_classes_per_detection,
                               values.detections_per_class, values.use_regular_nms)


def _tool_name(script: str) -> str:
    return os.path.splitext(os.path.basename(script))[0]


def _exit_code(request: SystemExit) -> int:
    """The exit code of `sys.exit(code)`, printing a message code as Python does."""
    if request.code is None or isinstance(request.code, int):
        return request.code or 0
    print(request.code, file=sys.stderr)
    return 1


def _run(main: Callable[[], None], argv: list[str], interactive: bool) -> int:
    """Parses `argv` into the flags and runs `main`; returns the exit code, having printed any error.

    A SystemExit (absl's `--help` and `--helpfull` print the usage and exit 1,
    or a tool's own `sys.exit`) ends the run with its code, not a persistent
    worker; only SIGTERM ends the process.
    """
    try:
        return _parse_and_run(main, argv, interactive)
    except _Terminated:
        raise
    except SystemExit as request:
        return _exit_code(request)


def _parse_and_run(main: Callable[[], None], argv: list[str], interactive: bool) -> int:
    tool = _tool_name(argv[0])
    flags.FLAGS.unparse_flags()  # a persistent worker parses a new command line per request
    try:
        unparsed = flags.FLAGS(argv)
    except flags.Error as error:
        print(f"{tool}: error: {error}", file=sys.stderr)
        return 1
    if len(unparsed) > 1:
        print(f"{tool}: error: unexpected arguments: {' '.join(unparsed[1:])}", file=sys.stderr)
        return 1
    # Under `bazel run`, resolve relative paths from where the user ran it.
    if interactive and os.environ.get("BUILD_WORKING_DIRECTORY"):
        os.chdir(os.environ["BUILD_WORKING_DIRECTORY"])
    try:
        main()
    except UserError as error:
        print(f"{tool}: error: {error}", file=sys.stderr)
        return 1
    except Exception:  # a bug: report it, and let a persistent worker serve the next request
        traceback.print_exc()
        return 1
    return 0


def _run_captured(main: Callable[[], None], argv: list[str]) -> tuple[int, str]:
    """Runs like an action: returns the exit code, and the output only if it failed."""
    with captured_output.capture() as output:
        exit_code = _run(main, argv, interactive=False)
    return exit_code, output.text if exit_code else ""


def _run_action(main: Callable[[], None], tool: str, params_argument: str) -> int:
    """Runs like an action of the rules: the flags in a params file, output only if it fails."""
    try:
        argv = [tool] + params_file.read(params_argument[1:])
    except UserError as error:
        print(f"{_tool_name(tool)}: error: {error}", file=sys.stderr)
        return 1
    exit_code, output = _run_captured(main, argv)
    sys.stderr.write(output)
    return exit_code


def run(main: Callable[[], None]) -> None:
    """Runs `main` with the command line parsed into absl flags, in one of three ways.

    * `TOOL --flag=...`: interactive; logs as it goes, a UserError ends it with
      its message and no trace.
    * `TOOL @params`: an action of the Bazel rules, its flags shell-quoted in
      the params file; the output is shown only when the tool fails, so
      successful builds stay quiet.
    * `TOOL --persistent_worker`: a Bazel persistent worker; each request (the
      params file's lines) runs like an action, with the same output, in one
      process that imports TensorFlow once.
    """
    # Bazel stops workers with SIGTERM: unwind, so that no half-written temporary file stays behind.
    signal.signal(signal.SIGTERM, _terminate)
    logging.set_verbosity(logging.INFO)
    logging.use_absl_handler()
    app.define_help_flags()
    tool, arguments = sys.argv[0], sys.argv[1:]
    if "--persistent_worker" in arguments:
        sys.exit(tool_worker.serve(tool, _tool_name(tool), lambda request: _run_captured(main, [tool] + request)))
    if _IMPORT_OUTPUT is not None:
        _IMPORT_OUTPUT.stop()
        sys.exit(_run_action(main, tool, arguments[0]))
    sys.exit(_run(main, sys.argv, interactive=True))
