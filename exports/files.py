"""Files an export writes: checked before anything is recorded, written whole or not at all."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def part_path(path: Path) -> Path:
    """Where a file is written before it is renamed to ``path``."""
    return path.with_name(f".{path.name}.part")


def check_writable(out: str | os.PathLike[str]) -> None:
    """Raise ``OSError`` now if a file cannot be written at ``out`` (its folder missing or
    read-only, ``out`` a folder): checked before an export records anything (a PES file as
    sent, a dossier's checkpoint), so that nothing is recorded for a file never written."""
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    temporary = part_path(path)
    try:
        temporary.write_bytes(b"")
        temporary.unlink()
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None


def write_whole(data: bytes, out: str | os.PathLike[str]) -> Path:
    """Write ``data`` at ``out`` atomically (a temporary file renamed): never half a file."""
    path = Path(out)
    temporary = part_path(path)
    temporary.write_bytes(data)
    temporary.replace(path)
    return path
