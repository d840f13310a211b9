"""Observability: IR text after every pass (--dump-ir) and drawings of the final graph (--viz)."""
