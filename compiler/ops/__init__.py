"""Operator definitions. Importing this package registers every op family: each module here (one family of
ops, each op one @register entry) is imported, so adding an op is one file plus its template."""

import importlib
import pkgutil

from .registry import Kernel, OpDef, lookup, register, supported_ops

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in ("registry", "common"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Kernel", "OpDef", "lookup", "register", "supported_ops"]
