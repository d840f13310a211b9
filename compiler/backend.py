"""mlcc as an ONNX backend (onnx.backend.base): the standard ONNX backend tests run against it.

    import mlcc.backend
    rep = mlcc.backend.prepare(model)            # compiles and builds into a temporary directory
    outputs = rep.run([x, y])                    # numpy in, numpy out, in graph order

Device "CPU" compiles for the c target, "CUDA" for the cuda target (which needs nvcc to build and a GPU to
run). Every prepare() is a full ahead-of-time compile and build; the library is deleted when the
representation is garbage-collected.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from . import compile as _compile
from . import load as _load
from .errors import CompileTimeValueError, MlccError
from .importer.functions import expand_functions
from .ops.registry import lookup

TARGETS = {DeviceType.CPU: "c", DeviceType.CUDA: "cuda"}


def _target(device: str) -> str:
    try:
        return TARGETS[Device(device).type]
    except (AttributeError, KeyError, ValueError) as e:
        raise MlccError(f"device {device!r}: mlcc.backend runs on 'CPU' (target c) or 'CUDA' (target cuda)") from e


def _sources(model: onnx.ModelProto, name: str) -> list[str]:
    """The graph inputs (not initializers) that value `name` is computed from, itself included."""
    inits = {t.name for t in model.graph.initializer}
    inputs = {i.name for i in model.graph.input} - inits
    producer = {out: node for node in model.graph.node for out in node.output}
    found, seen, todo = [], set(), [name]
    while todo:
        v = todo.pop()
        if v in seen or not v:
            continue
        seen.add(v)
        if v in inputs:
            found.append(v)
        elif v in producer:
            todo.extend(producer[v].input)
    return sorted(found)


class MlccRep(BackendRep):
    """A compiled and loaded model; run() takes inputs in graph order (list) or by name (dict).

    Graph inputs that the model uses as shapes, axes or other compile-time values (Reshape's shape, Slice's
    starts, a reduction's axes) cannot be compiled ahead of time. The backend then specialises: it compiles
    at the first run() with those inputs' values baked in as constants, and compiles again whenever their
    values change. Everything else is compiled once, in prepare().
    """

    def _sources_of(self, e: CompileTimeValueError) -> list[str]:
        """The graph inputs a compile-time value comes from: as the importer traced them (through control
        flow too), else by walking the model's producers."""
        return list(e.sources) if e.sources is not None else _sources(self._expanded(), e.value_name)

    def __init__(self, model: onnx.ModelProto, target: str, options: Mapping[str, Any]) -> None:
        self._proto, self._target, self._options = model, target, dict(options)
        self._input_names = [
            i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
        ]
        self._bound: dict[str, np.ndarray] = {}  # graph inputs compiled in as constants
        self._dir: str | None = None
        self._model = None
        # Sequence and optional graph inputs: their lengths, element shapes and presence are compiled in, so
        # the first run() compiles and a run whose layout differs compiles again.
        self._structured = {i.name for i in model.graph.input if not i.type.HasField("tensor_type")}
        self._layout: dict[str, Any] | None = None
        if self._structured:
            return
        try:
            self._build({})
        except CompileTimeValueError as e:
            self._needs = set(self._sources_of(e))  # compiled when their values are known
            if not self._needs:
                raise

    def _build(self, bound: Mapping[str, np.ndarray]) -> None:
        """Compile with `bound` graph inputs as initializers, adding any further input the compiler asks for."""
        bound = dict(bound)
        while True:
            model = onnx.ModelProto()
            model.CopyFrom(self._proto)
            if bound:
                kept = [i for i in model.graph.input if i.name not in bound]
                del model.graph.input[:]
                model.graph.input.extend(kept)
                model.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in bound.items())
            directory = tempfile.mkdtemp(prefix="mlcc-backend-")
            options = dict(self._options)
            if self._layout:
                layout = {n: shape for n, shape in self._layout.items() if n not in bound}
                options["input_shapes"] = {**options.get("input_shapes", {}), **layout}
            try:
                _compile(model, target=self._target, out_dir=directory, force=True, **options)
                loaded = _load(directory)
            except CompileTimeValueError as e:
                shutil.rmtree(directory, ignore_errors=True)
                wanted = [n for n in self._sources_of(e) if n not in bound]
                if not wanted or any(n not in self._feeds or n in self._structured for n in wanted):
                    raise
                bound.update((n, self._feeds[n]) for n in wanted)
                continue
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            self._release()
            self._dir, self._model, self._bound = directory, loaded, bound
            return

    _feeds: dict[str, np.ndarray] = {}

    def _expanded(self) -> onnx.ModelProto:
        """The model as the compiler sees it (function ops inlined), where compile errors name values."""
        return expand_functions(self._proto, lambda op, domain, version: lookup(op, domain, version) is not None)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, Mapping):
            feeds = {k: _feed(v) for k, v in inputs.items()}
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            if len(inputs) != len(self._input_names):
                raise ValueError(f"the model has {len(self._input_names)} inputs, {len(inputs)} were given")
            feeds = {n: _feed(a) for n, a in zip(self._input_names, inputs)}
        if self._structured:
            layout = {n: _layout(a) for n, a in feeds.items() if n not in self._bound}  # symbolic dims too
            if layout != self._layout:
                self._release()
                self._layout, self._feeds = layout, feeds
                self._build({n: feeds[n] for n in self._bound if n in feeds})  # binds what it must (_build)
                if self._bound:
                    self._needs = set(self._bound)  # and recompiles when their values change (below)
        specialise = getattr(self, "_needs", None)
        if specialise is not None:
            self._feeds = feeds
            stale = self._model is None or any(
                n not in feeds or not np.array_equal(feeds[n], a) or feeds[n].dtype != a.dtype
                for n, a in self._bound.items()
            )
            if stale:
                self._build({n: feeds[n] for n in set(self._bound) | specialise if n in feeds})
        results = self._model.run({n: a for n, a in feeds.items() if n not in self._bound})
        names = self._model.graph_outputs
        return namedtupledict("Outputs", [f"o{i}" for i in range(len(names))])(*[results[n] for n in names])

    def _release(self) -> None:
        if getattr(self, "_model", None) is not None:
            self._model.close()
            self._model = None
        if getattr(self, "_dir", None):
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __del__(self) -> None:
        self._release()


def _feed(a: Any) -> Any:
    """One graph input as the loader takes it: an array, a list of arrays (a sequence), or None (an absent
    optional)."""
    if a is None:
        return None
    if isinstance(a, (list, tuple)):
        return [np.asarray(x) for x in a]
    return np.asarray(a)


def _layout(a: Any) -> Any:
    """What a sequence or optional input fixes at compile time: its element shapes, its shape, or None."""
    if a is None:
        return None
    if isinstance(a, list):
        return [list(x.shape) for x in a]
    return list(a.shape)


class MlccBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        # Never used to skip: a model mlcc cannot compile must fail its test with the reason.
        return True

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> MlccRep:
        """Compile and build `model`; keyword options are those of mlcc.compile (input_shapes, opt_level, ...).

        The model is checked by mlcc's own importer (onnx.checker is not needed first)."""
        return MlccRep(model, _target(device), kwargs)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Sequence[np.ndarray],
        device: str = "CPU",
        outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, ...]:
        """Run one node: its inputs become graph inputs typed from the arrays given, its outputs graph outputs."""
        names = [n for n in node.input if n]
        if len(names) != len(inputs):
            raise ValueError(f"node {node.op_type} has {len(names)} inputs, {len(inputs)} arrays were given")
        arrays = [np.asarray(a) for a in inputs]
        graph_inputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, arrays)
        ]
        graph_outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        opsets = [helper.make_opsetid("", onnx.defs.onnx_opset_version())]
        if node.domain not in ("", "ai.onnx"):
            opsets.append(helper.make_opsetid(node.domain, 1))
        model = helper.make_model(helper.make_graph([node], "node", graph_inputs, graph_outputs), opset_imports=opsets)
        inferred = {}
        if outputs_info is None:
            try:
                done = onnx.shape_inference.infer_shapes(model).graph
                inferred = {v.name: v for v in [*done.value_info, *done.output] if v.type.HasField("tensor_type")}
            except Exception:  # noqa: BLE001 -- onnx cannot infer this node; mlcc's own inference decides
                pass
        for i, out in enumerate(graph_outputs):
            if outputs_info is not None:
                dtype, shape = outputs_info[i]
                elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
                model.graph.output[i].CopyFrom(helper.make_tensor_value_info(out.name, elem, shape))
            elif out.name in inferred:
                model.graph.output[i].CopyFrom(inferred[out.name])
        return cls.run_model(model, arrays, device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            target = _target(device)
        except MlccError:
            return False
        return target == "c" or shutil.which("nvcc") is not None


prepare = MlccBackend.prepare
run_model = MlccBackend.run_model
run_node = MlccBackend.run_node
supports_device = MlccBackend.supports_device
