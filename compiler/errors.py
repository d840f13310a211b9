"""User-facing failures. Every error a user can act on is an MlccError; anything else is a bug."""

from __future__ import annotations


class MlccError(Exception):
    """A failure caused by the input or the environment, reported as `mlcc: error: ...`."""

    exit_code = 2


class ModelError(MlccError):
    """The ONNX model is malformed, or inconsistent with what mlcc was told about it."""


class ShapeError(MlccError):
    """A shape is unknown, unbound or inconsistent."""


class CompileTimeValueError(ShapeError):
    """A value that must be known at compile time (a shape, axes, ...) is computed at run time."""

    def __init__(self, message: str, value_name: str) -> None:
        super().__init__(message)
        self.value_name = value_name
        self.sources: list[str] | None = None  # the graph inputs it is computed from, where the importer knows


class UnsupportedError(MlccError):
    """The model uses something the compiler does not implement (yet)."""


class BuildError(MlccError):
    """The C/CUDA toolchain failed on generated code."""

    exit_code = 1


class InternalError(MlccError):
    """A compiler bug detected by an internal check (verifier, template)."""

    exit_code = 1
