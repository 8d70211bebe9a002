"""Shared start-up of the command-line tools: quiet TensorFlow, clean errors."""

import os
import sys
from typing import Callable

# TensorFlow's C++ start-up banner is noise for these tools; set before TF loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, logging  # noqa: E402  (after the environment is set)

from ssd_tflite.errors import UserError  # noqa: E402


def run(main: Callable[[], None]) -> None:
    """Runs `main` under absl; an UserError ends the program with its message, no trace."""
    tool = os.path.splitext(os.path.basename(sys.argv[0]))[0]

    def absl_main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        logging.set_verbosity(logging.INFO)
        logging.use_absl_handler()
        try:
            main()
        except UserError as error:
            sys.exit(f"{tool}: error: {error}")

    app.run(absl_main)
