"""Bazel's params files in the "shell" format: an action's arguments, each shell-quoted, from a new line.

An argument holding line breaks spans lines. A persistent worker gets the
file's lines as WorkRequest.arguments (Bazel's worker reads the file by
lines), and joins them with line feeds to decode the file again; each line
break (CR LF, CR or LF) arrives as a line feed, in both modes. (Bazel 4's
worker also reads a line that starts with @ as a params file to expand: it
fails the action before a tool sees it.)
"""

import shlex

from ssd_tflite.errors import UserError


def parse(text: str, source: str) -> list[str]:
    """The arguments of a params file's `text`; UserError naming `source` if it is not shell-quoted."""
    try:
        return shlex.split(text)
    except ValueError as error:  # an unterminated quote
        raise UserError(f"{source}: not a shell-quoted params file: {error}") from None


def read(path: str) -> list[str]:
    """The arguments in the params file at `path`."""
    try:
        with open(path, encoding="utf-8") as params:  # universal newlines, as Bazel's worker reads it
            return parse(params.read(), path)
    except OSError as error:
        raise UserError(f"cannot read the params file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: the params file is not UTF-8: {error}") from None


def text(arguments: list[str]) -> str:
    """The params file that holds `arguments`."""
    return "".join(shlex.quote(argument) + "\n" for argument in arguments)
