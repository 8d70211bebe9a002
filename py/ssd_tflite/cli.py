"""Shared start-up of the command-line tools: quiet TensorFlow, clean errors."""

import os
import sys
from typing import Callable

# TensorFlow's C++ start-up banner is noise for these tools; set before TF loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402  (after the environment is set)

from ssd_tflite.errors import UserError  # noqa: E402
from ssd_tflite.graph_contract import PostProcessingFlags  # noqa: E402


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


def run(main: Callable[[], None]) -> None:
    """Runs `main` under absl; an UserError ends the program with its message, no trace."""
    tool = os.path.splitext(os.path.basename(sys.argv[0]))[0]

    def absl_main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        # Under `bazel run`, resolve relative paths from where the user ran it.
        if os.environ.get("BUILD_WORKING_DIRECTORY"):
            os.chdir(os.environ["BUILD_WORKING_DIRECTORY"])
        logging.set_verbosity(logging.INFO)
        logging.use_absl_handler()
        try:
            main()
        except UserError as error:
            sys.exit(f"{tool}: error: {error}")

    app.run(absl_main)
