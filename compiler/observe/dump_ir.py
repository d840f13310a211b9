"""--dump-ir DIR: the IR text after import (00-import.txt) and after every pass (NN-<pass>.txt)."""

from __future__ import annotations

import re
from pathlib import Path

from .. import outdir
from ..errors import MlccError
from ..ir.graph import Graph
from ..ir.printer import print_graph

DUMP_FILE = re.compile(r"^[0-9]{2,}-[A-Za-z0-9_]+\.txt$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


class IrDumper:
    """Writes numbered IR files into one directory; names come from pass names only, never from the model."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        if directory.exists() and not directory.is_dir():
            raise MlccError(f"--dump-ir {str(directory)!r} exists and is not a directory")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.iterdir():  # dumps of an earlier compile would mix with this one's
                if DUMP_FILE.match(stale.name) and stale.is_file():
                    stale.unlink()
        except OSError as err:
            raise MlccError(f"cannot write --dump-ir directory {str(directory)!r}: {err.strerror}") from None

    def write(self, pass_name: str, graph: Graph) -> Path:
        stem = _UNSAFE.sub("_", pass_name).strip("_")[:64] or "pass"
        path = self.directory / f"{self.count:02d}-{stem}.txt"
        outdir.write(path, print_graph(graph))
        self.count += 1
        return path
