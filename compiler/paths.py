"""Where the templates and the C runtime live: beside the package in a source tree, inside it when installed."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str, packaged: str) -> Path:
    for candidate in (_PKG.parent / name, _PKG / packaged):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mlcc installation is incomplete: {name}/ not found near {_PKG}")


def templates_dir() -> Path:
    return _find("templates", "_templates")


def runtime_c_dir() -> Path:
    return _find("runtime_c", "_runtime_c")
