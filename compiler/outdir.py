"""The output directory: created or claimed safely, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import MlccError

MARKER = ".mlcc-output"


def claim(out: Path, force: bool = False) -> None:
    """Make `out` ready for mlcc's files. A non-empty directory mlcc did not create is refused without --force."""
    if out.exists() and not out.is_dir():
        raise MlccError(f"output path {str(out)!r} exists and is not a directory")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()) and not force:
        raise MlccError(
            f"refusing to write into {str(out)!r}: it is not empty and mlcc did not create it; "
            "choose another -o directory or pass --force"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        write(out / MARKER, "This directory was written by mlcc; mlcc may overwrite the files in it.\n")
    except OSError as err:
        raise MlccError(f"cannot write to output directory {str(out)!r}: {err.strerror}") from None


def write(path: Path, data: bytes | str) -> None:
    """Write atomically: a reader (or an interrupted compile) never sees a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as err:
        raise MlccError(f"cannot write {str(path)!r}: {err.strerror}") from None


def remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        raise MlccError(f"cannot remove stale {str(path)!r}: {err.strerror}") from None
