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
from onnx import helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from . import compile as _compile
from . import load as _load
from .errors import MlccError

TARGETS = {DeviceType.CPU: "c", DeviceType.CUDA: "cuda"}


def _target(device: str) -> str:
    try:
        return TARGETS[Device(device).type]
    except (AttributeError, KeyError, ValueError) as e:
        raise MlccError(f"device {device!r}: mlcc.backend runs on 'CPU' (target c) or 'CUDA' (target cuda)") from e


class MlccRep(BackendRep):
    """A compiled and loaded model; run() takes inputs in graph order (list) or by name (dict)."""

    def __init__(self, model: onnx.ModelProto, target: str, options: Mapping[str, Any]) -> None:
        self._dir = tempfile.mkdtemp(prefix="mlcc-backend-")
        try:
            _compile(model, target=target, out_dir=self._dir, force=True, **options)
            self._model = _load(self._dir)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        infos = self._model.inputs
        if isinstance(inputs, Mapping):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            if len(inputs) != len(infos):
                raise ValueError(f"the model has {len(infos)} inputs, {len(inputs)} were given")
            feeds = {t.name: np.asarray(a) for t, a in zip(infos, inputs)}
        results = self._model.run(feeds)
        names = [t.name for t in self._model.outputs]
        return namedtupledict("Outputs", [f"o{i}" for i in range(len(names))])(*[results[n] for n in names])

    def __del__(self) -> None:
        model = getattr(self, "_model", None)
        if model is not None:
            model.close()
        if getattr(self, "_dir", None):
            shutil.rmtree(self._dir, ignore_errors=True)


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
