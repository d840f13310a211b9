"""The C11 backend: one static function per distinct kernel, a run() that calls them in order."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ...ir.graph import Value
from ...ops.common import c_literal
from ..emitter import c_identifier, make_env, render
from ..program import Program, Step

ABI_VERSION = 1


@dataclass
class ModelMeta:
    prefix: str
    model_hash: str
    version: str
    flags: str
    weights: str  # "embed" or "external"
    source_name: str


@dataclass
class Call:
    fn: str
    args: list[str]
    comment: str


class CBackend:
    target = "c"
    source_suffix = ".c"
    kernel_qualifier = "static void"

    def __init__(self) -> None:
        self.env = make_env(self.target)

    def pointer(self, program: Program, v: Value) -> str:
        loc, ct = program.where(v), v.dtype.c
        if loc.kind == "input":
            return f"(const {ct} *)inputs[{loc.index}]"
        if loc.kind == "output":
            return f"({ct} *)outputs[{loc.index}]"
        if loc.kind == "weights":
            return f"(const {ct} *)(m->weights + {loc.index})"
        base = "m->arena" if loc.kind == "arena" else "m->fills"
        return f"({ct} *)({base} + {loc.index})"

    def signature(self, fn: str, step: Step) -> str:
        k = step.kernel
        names = k.names()
        args = [f"const {v.dtype.c} *{n}" for v, n in zip(k.inputs, names)]
        args += [f"{v.dtype.c} *{n}" for v, n in zip(k.outputs, names[len(k.inputs) :])]
        return f"{self.kernel_qualifier} {fn}({', '.join(args) or 'void'})"

    def kernels(self, program: Program) -> tuple[list[str], list[Call]]:
        """Render each distinct kernel once; return the function texts and the run() calls."""
        functions: list[str] = []
        by_key: dict[str, str] = {}
        calls = []
        for step in program.steps:
            k = step.kernel
            key = json.dumps([k.family, k.names(), [v.dtype.c for v in k.inputs + k.outputs], k.params], sort_keys=True)
            fn = by_key.get(key)
            if fn is None:
                fn = c_identifier(f"k{len(functions)}_{k.name}")
                by_key[key] = fn
                text = render(
                    self.env,
                    f"kernels/{k.family}{self.source_suffix}.j2",
                    signature=self.signature(fn, step),
                    **k.params,
                )
                functions.append(text)
            args = [self.pointer(program, v) for v in k.inputs + k.outputs]
            calls.append(Call(fn, args, f"{step.node.op} {step.node.name!r}"))
        return functions, calls

    def generate(self, program: Program, meta: ModelMeta) -> dict[str, str]:
        functions, calls = self.kernels(program)
        graph = program.graph
        common = {
            "meta": meta,
            "abi_version": ABI_VERSION,
            "inputs": [_info(v) for v in graph.inputs],
            "outputs": [_info(v) for v in graph.outputs],
        }
        copies = [
            {"index": j, "src": self.pointer(program, v), "nbytes": v.nbytes, "name": v.name}
            for j, v in program.output_copies
        ]
        fills = [
            {
                "ctype": f.value.dtype.c,
                "offset": f.offset,
                "count": f.value.size,
                "literal": _literal(f.literal, f.value),
            }
            for f in program.fills
        ]
        source = render(
            self.env,
            "model.c.j2",
            functions=functions,
            calls=calls,
            copies=copies,
            fills=fills,
            fill_bytes=program.fill_bytes,
            arena_bytes=program.memory.arena_bytes,
            weight_bytes=len(program.weights),
            **common,
        )
        return {
            meta.source_name: source,
            "model.h": render(self.env, "model.h.j2", **common),
            "weights.S": render(self.env, "weights.S.j2", **common),
            "Makefile": render(self.env, "Makefile.j2", **common),
        }


def _info(v: Value) -> dict:
    return {
        "name": v.name,
        "dtype": v.dtype.onnx,
        "dtype_name": v.dtype.name,
        "shape": list(v.shape),
        "nbytes": v.nbytes,
    }


def _literal(value: object, v: Value) -> str:
    return c_literal(value, v.dtype)
