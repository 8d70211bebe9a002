"""Capturing everything a process writes, TensorFlow's C++ logging included, at the file-descriptor level."""

import contextlib
import os
import sys
import tempfile
from typing import Iterator


class CapturedOutput:
    """Sends file descriptors 1 and 2 to one temporary file from construction until `stop()`."""

    def __init__(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self._log = tempfile.TemporaryFile()
        os.dup2(self._log.fileno(), 1)
        os.dup2(self._log.fileno(), 2)
        self.text = ""
        self.stopped = False

    def stop(self) -> str:
        """Restores stdout and stderr; returns (and keeps in `text`) what was written meanwhile."""
        sys.stdout.flush()
        sys.stderr.flush()
        for target, original in zip((1, 2), self._saved):
            os.dup2(original, target)
            os.close(original)
        self._log.seek(0)
        self.text = self._log.read().decode(errors="replace")
        self._log.close()
        self.stopped = True
        return self.text


@contextlib.contextmanager
def capture() -> Iterator[CapturedOutput]:
    """Captures the output of the block; `text` is set when it ends."""
    captured = CapturedOutput()
    try:
        yield captured
    finally:
        captured.stop()
