"""--output-bound: a data-dependent graph output stored with the bound the user gives instead of the one its op
inferred (every element non-zero, every box kept, a 4096 x 4096 image, ...). Only the data-dependent axes may
change; the op's kernel then checks the bound and fails the run (MLCC_ERR_OVER_BOUND) rather than overflow it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ShapeError
from ..ir.dtypes import STRING
from ..ir.graph import Graph


def bound_outputs(graph: Graph, bounds: Mapping[str, Sequence[int]]) -> None:
    outputs = {v.name: v for v in graph.outputs}
    for name, shape in bounds.items():
        shape = tuple(int(d) for d in shape)
        v = outputs.get(name)
        where = f"--output-bound {name}={','.join(map(str, shape))}"
        if v is None:
            raise ShapeError(
                f"{where}: the model has no output {name!r} (its outputs: {', '.join(map(repr, outputs))})"
            )
        if not v.dynamic_axes or v.dtype == STRING:
            what = "string output is sized by the run" if v.dtype == STRING else f"shape {list(v.shape)} is static"
            raise ShapeError(f"{where}: output {name!r}'s {what}; only data-dependent outputs take a bound")
        if len(shape) != v.rank or any(d < 1 for d in shape):
            raise ShapeError(f"{where}: output {name!r} has rank {v.rank}; give {v.rank} positive dims")
        fixed = [a for a in range(v.rank) if a not in v.dynamic_axes and shape[a] != v.shape[a]]
        if fixed:
            raise ShapeError(
                f"{where}: axis {fixed[0]} of {name!r} is not data-dependent (its extent is {v.shape[fixed[0]]}); "
                f"only axes {list(v.dynamic_axes)} take a bound"
            )
        v.shape = shape
