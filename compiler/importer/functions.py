"""Ops that ONNX defines as functions (Attention, the loss ops, CenterCropPad, MeanVarianceNormalization, ...)
are expanded into their function bodies when mlcc has no kernel of its own for them.

The body comes from onnx's operator schemas (a plain function body, or a context-dependent one built for the
node's attributes and input types), is attached to the model as a local function under a private domain and
inlined with onnx's own inliner, which gives the body's values fresh names. Expansion repeats while a body
holds further function ops, a bounded number of rounds; ops with a kernel in the registry are never expanded.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx
import onnx.inliner
from onnx import defs, helper

from ..errors import ModelError

DOMAIN = "mlcc.expanded"
MAX_ROUNDS = 6


def _body(node: onnx.NodeProto, version: int, types: dict[str, onnx.TypeProto]) -> onnx.FunctionProto | None:
    """The function body of `node` at opset `version`, or None where its schema defines none. Attributes
    left at their default are written onto `node` (the body may refer to them)."""
    if not isinstance(node.op_type, str) or not isinstance(node.domain, str):
        return None  # names that are not valid UTF-8 (a damaged file) name no schema
    try:
        schema = defs.get_schema(node.op_type, version, node.domain)
    except (defs.SchemaError, TypeError):
        return None
    if not (schema.has_function or schema.has_context_dependent_function):
        return None
    present = {a.name for a in node.attribute}
    for name, attr in schema.attributes.items():
        if name not in present and attr.default_value and attr.default_value.type:
            node.attribute.append(attr.default_value)
    context = [v for v in schema.context_dependent_function_opset_versions if v <= version]
    plain = [v for v in schema.function_opset_versions if v <= version]
    body = onnx.FunctionProto()
    if context and (not plain or max(context) >= max(plain)):
        if any(name and name not in types for name in node.input):
            return None  # a context-dependent body needs every input's type
        input_types = [types[name].SerializeToString() if name else b"" for name in node.input]
        data = schema.get_context_dependent_function_with_opset_version(
            max(context), node.SerializeToString(), input_types
        )
    elif plain:
        data = schema.get_function_with_opset_version(max(plain))
        if isinstance(data, onnx.FunctionProto):
            data = data.SerializeToString()
    else:
        return None
    body.ParseFromString(data)
    return body if body.node else None


def _domain(node: onnx.NodeProto) -> str:
    return "" if node.domain in ("", "ai.onnx") else node.domain


def expand_functions(model: onnx.ModelProto, supported: Callable[[str, str, int], bool]) -> onnx.ModelProto:
    """A copy of `model` with every unsupported function op of the main graph inlined (the model itself if none)."""
    opsets = {("" if o.domain in ("", "ai.onnx") else o.domain): int(o.version) for o in model.opset_import}
    changed = False
    for _ in range(MAX_ROUNDS):
        pending = [
            n
            for n in model.graph.node
            if _domain(n) in opsets
            and _domain(n) != DOMAIN
            and not supported(n.op_type, _domain(n), opsets[_domain(n)])
        ]
        if not pending:
            break
        try:
            typed = onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 -- types stay unknown; context-dependent bodies are skipped
            typed = model
        types = {v.name: v.type for v in [*typed.graph.input, *typed.graph.value_info, *typed.graph.output]}
        types.update((t.name, helper.make_tensor_type_proto(t.data_type, t.dims)) for t in typed.graph.initializer)
        if not changed:
            model = onnx.ModelProto.FromString(model.SerializeToString())
            changed = True
        names = []
        for node in model.graph.node:
            if (node.op_type, _domain(node)) not in {(p.op_type, _domain(p)) for p in pending}:
                continue
            body = _body(node, opsets[_domain(node)], types)
            if body is None:
                continue
            name = f"f{len(model.functions)}_{len(names)}"
            body.name, body.domain = name, DOMAIN
            model.functions.append(body)
            node.op_type, node.domain = name, DOMAIN
            names.append(name)
        if not names:
            break
        if DOMAIN not in opsets:
            model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
            opsets[DOMAIN] = 1
        try:
            model = onnx.inliner.inline_selected_functions(model, [(DOMAIN, n) for n in names], exclude=False)
        except Exception as e:  # noqa: BLE001 -- onnx's inliner rejects a malformed expansion
            raise ModelError(
                f"expanding function ops ({', '.join(sorted({p.op_type for p in pending}))}) failed: {e}"
            ) from e
    return model
