"""Writing outputs all-or-nothing, so a failure never leaves half-written files."""

import os
import tempfile


def _file_mode() -> int:
    """What open() would give a new file: 0o666 less the umask (mkstemp gives 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_files(directory: str, files: dict[str, bytes]) -> None:
    """Writes every file of `files` (name -> content) into `directory`, or none of them."""
    os.makedirs(directory, exist_ok=True)
    mode = _file_mode()
    staged = []
    try:
        for name, content in files.items():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
            staged.append((temporary, os.path.join(directory, name)))
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.chmod(temporary, mode)
        for temporary, final in staged:
            os.replace(temporary, final)
    finally:
        for temporary, _ in staged:
            if os.path.exists(temporary):
                os.remove(temporary)


def write_file(path: str, content: bytes) -> None:
    """Writes one file via a temporary sibling."""
    write_files(os.path.dirname(os.path.abspath(path)), {os.path.basename(path): content})
