"""Operator definitions. Importing this package registers every op family."""

from . import conv, elementwise, matmul, norm, pool, shape  # noqa: F401
from .registry import Kernel, OpDef, lookup, register, supported_ops

__all__ = ["Kernel", "OpDef", "lookup", "register", "supported_ops"]
