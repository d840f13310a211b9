"""The C11 backend: one static function per distinct kernel, a run() that calls them in order."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ...cpu import CpuTarget, cpu_target, transpose_plan
from ...errors import UnsupportedError
from ...ir.dtypes import STRING
from ...ir.graph import Value
from ...ops.common import c_literal
from ...ops.registry import Kernel
from ..emitter import c_identifier, c_string, make_env, render
from ..program import Program, Step

# Memory-bound kernel families whose outermost loop is split over the thread pool when large enough
SPLIT_FAMILIES = ("elementwise", "pool", "pool_rows")
SPLIT_MIN_WORK = 1 << 15  # elements (pools: element-taps): smaller ones cost less than waking the pool

ABI_VERSION = 3  # 2: mlcc_tensor_info.dynamic_axis and PREFIX_output_shape; 3: string tensors, output_data


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
    launch: str = ""  # CUDA: <<<grid, block, 0, stream>>>


def _describe(step: Step) -> str:
    """The comment beside a kernel call: the ONNX nodes it runs (every member of a fused group; a node the
    layout pass re-laid out under its original op type)."""
    node = step.node
    body = node.attrs.get("body") if node.op == "Fused" else None
    return " + ".join(f"{n.attrs.get('source_op', n.op)} {n.name!r}" for n in (body or [node]))


def _gather_rows(kernels: list, clamped: bool) -> list[int]:
    """The row counts of the in-place pixel-major kernels' tiles, whole and last (cpu.py pixel_tail), of those
    that clamp in registers (a Relu or Clip: ops/fused.py in_register_clamp) or of the others: the micro-kernels
    (mlcc_ukr_gather{rows}[_clamp]) the model calls, and no others."""
    return sorted(
        {
            k.params[rows]
            for k in kernels
            if k.family == "conv_pmajor" and k.params["direct"] and bool(k.params.get("clamp")) == clamped
            for rows in ("MR", "TAIL")
            if k.params[rows]
        }
    )


class CBackend:
    target = "c"
    source_suffix = ".c"
    kernel_qualifier = "static void"
    family_alias: dict[str, str] = {}  # a kernel family rendered by another family's template

    def __init__(self, cpu: CpuTarget | None = None) -> None:
        self.env = make_env(self.target)
        self.templates = set(self.env.list_templates())
        self.cpu = cpu or cpu_target("generic")

    def pointer(self, program: Program, v: Value) -> str:
        loc, ct = program.where(v), v.dtype.c
        if loc.kind == "input":
            return f"(const {ct} *)inputs[{loc.index}]"
        if loc.kind == "output":
            return f"({ct} *)outputs[{loc.index}]"
        if loc.kind == "weights":
            return f"(const {ct} *)(m->weights + {loc.index})"
        if loc.kind == "strings":
            return f"string_table{loc.index}"
        if loc.kind == "owned":
            return f"&m->out_data[{loc.index}]"
        base = "m->arena" if loc.kind == "arena" else "m->fills"
        return f"({ct} *)({base} + {loc.index})"

    def arg_decls(self, step: Step) -> list[str]:
        """The kernel's pointer parameters as C declarations, in call order."""
        k = step.kernel
        names = k.names()
        args = [f"const {v.dtype.c} *{n}" for v, n in zip(k.inputs, names)]
        owned = k.params.get("owned_outputs", ())  # the kernel allocates these and stores where they are
        outs = zip(k.outputs, names[len(k.inputs) :])
        args += [f"{v.dtype.c} *{'*' if i in owned else ''}{n}" for i, (v, n) in enumerate(outs)]
        args += [f"int64_t *{n}_len" for v, n in zip(k.outputs, names[len(k.inputs) :]) if v.dynamic_axes]
        return args

    def split_rows(self, k: Kernel) -> int:
        """For a large memory-bound kernel, the extent of its outermost loop, which the template cuts into
        one range per thread (SPLIT_FAMILIES); 0 to run it on the calling thread."""
        if k.family not in SPLIT_FAMILIES or k.params.get("threaded"):
            return 0
        p = k.params
        rows, total = (p["dims"][0], math.prod(p["dims"])) if k.family == "elementwise" and p["dims"] else (0, 0)
        if k.family in ("pool", "pool_rows"):
            rows, total = p["NC"], p["NC"] * math.prod(p["out"]) * math.prod(p["kernel"])
        return rows if rows >= 2 and total >= SPLIT_MIN_WORK else 0

    def runs_tasks(self, k: Kernel) -> bool:
        return bool(k.params.get("threaded") or self.split_rows(k))

    def signature(self, fn: str, step: Step) -> str:
        args = self.arg_decls(step)
        if self.runs_tasks(step.kernel):
            args.append("mlcc_exec *x")  # the thread pool and per-worker scratch (runtime_c/mlcc_pool.h)
        if step.kernel.params.get("counter"):
            args.append("uint64_t run_index")  # the instance's run number (random ops)
        if step.kernel.params.get("strings"):
            args.append("mlcc_strheap *heap")  # where the strings it makes go (runtime_c/mlcc_strings.h)
        if step.kernel.params.get("checks_data"):
            args.append("int *failed")  # a status (mlcc_runtime.h) the run returns: bad input data, a bound exceeded
        args += [decl for decl, _ in self.extra_params(step)]
        return f"{self.kernel_qualifier} {fn}({', '.join(args) or 'void'})"

    def extra_params(self, step: Step) -> list[tuple[str, str]]:
        """Target-specific trailing kernel parameters: (declaration, argument in the call)."""
        return []

    def launch(self, step: Step) -> str:
        """The launch configuration of a kernel call; a C call has none."""
        return ""

    def strategy(self, step: Step) -> dict:
        """Target-specific template parameters chosen from a kernel's params (the C target has none)."""
        return {}

    def kernels(self, program: Program) -> tuple[list[str], list[Call]]:
        """Render each distinct kernel once; return the function texts and the run() calls."""
        functions: list[str] = []
        by_key: dict[str, str] = {}
        calls = []
        views: dict[int, list[Call]] = {}  # a copy the memory planner made a view: a comment where it was
        for t, s, v in program.elided:
            views.setdefault(t, []).append(Call("", [], f"{_describe(s)}: no copy, {v.name!r} is stored in place"))
        for t, step in enumerate(program.steps):
            calls += views.pop(t, [])
            k = step.kernel
            key = json.dumps([k.family, k.names(), [v.dtype.c for v in k.inputs + k.outputs], k.params], sort_keys=True)
            fn = by_key.get(key)
            if fn is None:
                template = f"kernels/{self.family_alias.get(k.family, k.family)}{self.source_suffix}.j2"
                if template not in self.templates:
                    node = step.node
                    raise UnsupportedError(
                        f"{node.op} {node.name!r}: the {self.target} target has no {k.family} kernel yet "
                        "(the c target has)"
                    )
                fn = c_identifier(f"k{len(functions)}_{k.name}")
                by_key[key] = fn
                decls = self.arg_decls(step)
                text = render(
                    self.env,
                    template,
                    fn=fn,
                    signature=self.signature(fn, step),
                    arg_decls=decls,
                    arg_names=[d.rsplit("*", 1)[1] for d in decls],  # each declaration ends in *NAME
                    split_rows=self.split_rows(k),
                    **k.params,
                    **self.strategy(step),
                )
                functions.append(text)
            args = [self.pointer(program, v) for v in k.inputs + k.outputs]
            args += [f"&m->extents[{program.extent_slot(v)}]" for v in k.outputs if v.dynamic_axes]
            if self.runs_tasks(k):
                args.append("&m->exec")
            if k.params.get("counter"):
                args.append("run_index")
            if k.params.get("strings"):
                args.append("&m->strings")
            if k.params.get("checks_data"):
                args.append("&failed")
            args += [arg for _, arg in self.extra_params(step)]
            calls.append(Call(fn, args, _describe(step), self.launch(step)))
        return functions, calls + [c for rest in views.values() for c in rest]

    def tensor_info(self, v: Value, output: bool = False) -> dict:
        axis = v.dynamic_axes[0] if v.dynamic_axes else -1  # the first; output_shape reports them all
        nbytes = 0 if output and v.dtype == STRING else v.nbytes  # string outputs: the instance's (output_data)
        return {"name": v.name, "dtype": v.dtype.onnx, "shape": list(v.shape), "nbytes": nbytes, "dynamic_axis": axis}

    def published(self, program: Program) -> list[dict]:
        """The string outputs the run copies into the instance's heap at its end (not those a kernel made
        there itself)."""
        out = []
        for j, v in program.published:
            loc = program.where(v)
            if loc.kind == "owned" and loc.index == j:
                continue
            src = f"(const mlcc_str *)m->out_data[{loc.index}]" if loc.kind == "owned" else self.pointer(program, v)
            count = str(v.size)
            if v.dynamic_axes:
                rest = int(np.prod([d for a, d in enumerate(v.shape) if a not in v.dynamic_axes], dtype=np.int64))
                slot = program.extent_slot(v)
                count = " * ".join([str(rest)] + [f"m->extents[{slot + k}]" for k in range(len(v.dynamic_axes))])
            out.append({"index": j, "src": src, "count": count, "name": v.name})
        return out

    def string_tables(self, program: Program) -> list[list[str]]:
        """Each string constant's elements as C string literals (escaped: the model's text is untrusted)."""
        return [[c_string(x) for x in v.data.reshape(-1)] for v in program.string_consts]

    def host_params(self, program: Program) -> dict:
        """What the host template lays out: kernels, calls, output copies, fills and sizes."""
        functions, calls = self.kernels(program)
        copies = [
            {"index": j, "src": self.pointer(program, v), "nbytes": v.nbytes, "name": v.name}
            for j, v in program.output_copies
        ]
        fills = [
            {
                "ctype": f.value.dtype.c,
                "offset": f.offset,
                "count": f.value.size,
                "literal": c_literal(f.literal, f.value.dtype),
            }
            for f in program.fills
        ]
        threaded = [s.kernel for s in program.steps if self.runs_tasks(s.kernel)]
        engine = None
        if threaded:
            cpu = self.cpu
            engine = {
                "MR": cpu.mr,
                "NR": cpu.nr,
                "VW": cpu.vw,
                "transpose": transpose_plan(cpu.mr, cpu.vw),
                # the row counts of the pixel-major tiles that read their input in place (conv_pmajor.c.j2)
                "gather_rows": _gather_rows(threaded, clamped=False),
                # the strided micro-kernel: 1x1 convolutions reading B in place (conv_packed.c.j2)
                "strided": any(k.params.get("b_in_place") for k in threaded),
                # micro-kernels that add the bias and apply a Relu or Clip in registers (conv_packed.c.j2)
                "clamp": any(k.family == "conv_packed" and k.params.get("clamp") for k in threaded),
                "gather_clamp": _gather_rows(threaded, clamped=True),
                "cpu": cpu.name,
                "scratch_floats": max(k.params.get("scratch_floats", 0) for k in threaded) or 1,
            }
        return {
            "engine": engine,
            "random": any(s.kernel.params.get("counter") for s in program.steps),
            "checks_data": any(s.kernel.params.get("checks_data") for s in program.steps),
            "images": any(s.kernel.family == "image_decoder" for s in program.steps),
            "functions": functions,
            "calls": calls,
            "copies": copies,
            "fills": fills,
            "fill_bytes": program.fill_bytes,
            "arena_bytes": program.memory.arena_bytes,
            "weight_bytes": len(program.weights),
            "num_extents": program.extent_slots,
            "output_extents": [program.extent_slot(v) for v in program.graph.outputs],
            # outputs with several data-dependent axes: (index, the axes after the first)
            "more_axes": [
                (j, v.dynamic_axes[1:]) for j, v in enumerate(program.graph.outputs) if len(v.dynamic_axes) > 1
            ],
            "strings": program.uses_strings,
            "string_tables": self.string_tables(program),
            "published": self.published(program),
            "string_outputs": [j for j, _ in program.published],
        }

    def makefile_params(self, host: dict) -> dict:
        """What the Makefile template needs beyond the model's names."""
        return {"march": self.cpu.march, "threads": bool(host["engine"])}

    def generate(self, program: Program, meta: ModelMeta) -> dict[str, str]:
        """All generated files of the output directory, by name."""
        host = self.host_params(program)
        common = {
            "meta": meta,
            "abi_version": ABI_VERSION,
            "inputs": [self.tensor_info(v) for v in program.graph.inputs],
            "outputs": [self.tensor_info(v, output=True) for v in program.graph.outputs],
        }
        return {
            meta.source_name: render(self.env, f"model{self.source_suffix}.j2", **host, **common),
            "model.h": render(self.env, "model.h.j2", **common),
            "weights.S": render(self.env, "weights.S.j2", **common),
            "Makefile": render(self.env, "Makefile.j2", **common, **self.makefile_params(host)),
        }
