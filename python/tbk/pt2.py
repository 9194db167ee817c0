"""tbk.pt2: what torch.export (tbk.export) and torch.compile (tbk.compile) share: regions of an FX
graph module lowered to a tbk backend and called through one operator.

Each region a backend claims (tbk.bridge: its supports hook, asked in the TorchScript view of the
graph) is lowered by the backend's preprocess, once, into a tbk.Region object (a torchbind class:
the processed payload, compiled when the object is made or loaded), and its nodes are replaced by
one call of the operator tbk::call_region(inputs, region), as Torch-TensorRT's execute_engine does:
the same object lives in an ExportedProgram, a .pt2 file and a torch.compile'd graph. The C++ side
is tbk/pt2.hpp, registered by every tbk backend's library.

    gm, report = tbk.pt2.delegate(graph_module, "tbk_onednn")
"""
import functools
import io
import json
import operator
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.fx

from . import _C, bridge

__all__ = ["delegate", "Report", "region_meta", "call_region"]


def _operator() -> Any:
    """torch.ops.tbk.call_region, which a tbk backend's library registers."""
    try:
        return torch.ops.tbk.call_region.default
    except (AttributeError, RuntimeError):
        raise RuntimeError("tbk: the operator tbk::call_region is not registered: load a tbk backend's library "
                           "first (torch.ops.load_library(path), or import tbk.onednn)") from None


def call_region() -> Any:
    return _operator()


# ---- the shapes of a region's outputs, for fake tensors -----------------------------------------

def _expression(expr: Any, names: Dict[Any, str]) -> Any:
    """A sympy size expression over input sizes as a JSON tree tbk can evaluate without eval():
    an int, an input size's name ("i0_2": input 0, dimension 2), or [operator, operands...]."""
    import sympy
    if expr in names:
        return names[expr]
    if expr.is_Symbol:
        raise ValueError(f"size {expr} is not one of the region's input sizes")
    if isinstance(expr, sympy.Integer) or expr.is_Integer:
        return int(expr)
    name = type(expr).__name__
    table = {"Add": "+", "Mul": "*", "FloorDiv": "//", "Mod": "%", "PythonMod": "%", "Max": "max", "Min": "min",
             "CeilDiv": "ceildiv", "CleanDiv": "//", "IntTrueDiv": "//"}
    if name == "Pow" and expr.args[1].is_Integer and int(expr.args[1]) >= 0:
        return ["**", _expression(expr.args[0], names), int(expr.args[1])]
    if name not in table:
        raise ValueError(f"size {expr} is no expression tbk can write down")
    return [table[name]] + [_expression(a, names) for a in expr.args]


def _evaluate(tree: Any, sizes: Dict[str, Any]) -> Any:
    """The value of an _expression tree at the given input sizes (ints or SymInts)."""
    if isinstance(tree, int):
        return tree
    if isinstance(tree, str):
        return sizes[tree]
    op, *args = tree
    values = [_evaluate(a, sizes) for a in args]
    if op == "**":
        return values[0] ** values[1]
    if op in ("max", "min"):
        return functools.reduce(torch.sym_max if op == "max" else torch.sym_min, values)
    result = values[0]
    for v in values[1:]:
        if op == "+":
            result = result + v
        elif op == "*":
            result = result * v
        elif op == "//":
            result = result // v
        elif op == "%":
            result = result % v
        elif op == "ceildiv":
            result = -((-result) // v)
        else:
            raise ValueError(f"tbk.Region: an unknown size operator {op!r}")
    return result


def _input_names(inputs: Sequence[torch.fx.Node], weights: Sequence[Tuple[torch.fx.Node, torch.Tensor]] = ()
                 ) -> Dict[Any, Any]:
    """Each symbol of the inputs' sizes as an expression tree of those sizes: a size that is the
    symbol itself ("i0_2": input 0, dimension 2), or a*s + b of it, solved for s. `weights`: the
    region's frozen weights (node, value): a symbol of a weight's size is that size, a number
    (torch.compile(dynamic=True) gives the parameters it lifts symbolic sizes too, and an output's
    channels are then a weight's)."""
    import sympy
    names: Dict[Any, Any] = {}
    for node, value in weights:
        recorded = node.meta.get("val")
        if isinstance(recorded, torch.Tensor) and recorded.dim() == value.dim():
            for size, real in zip(recorded.shape, value.shape):
                if isinstance(size, torch.SymInt) and size.node.expr.is_Symbol:
                    names.setdefault(size.node.expr, int(real))
    solved: Dict[Any, Any] = {}
    for k, node in enumerate(inputs):
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor):
            continue
        for d, size in enumerate(value.shape):
            if not isinstance(size, torch.SymInt):
                continue
            expr = size.node.expr
            if expr.is_Symbol:
                names.setdefault(expr, f"i{k}_{d}")
            elif len(expr.free_symbols) == 1:
                (s,) = expr.free_symbols
                a, b = expr.coeff(s), expr.subs(s, 0)
                if sympy.expand(a * s + b - expr) == 0 and a.is_Integer and b.is_Integer and int(a) != 0:
                    solved.setdefault(s, ["//", ["+", f"i{k}_{d}", -int(b)], int(a)])
    for s, tree in solved.items():
        names.setdefault(s, tree)
    return names


def _retraced(nodes: Sequence[torch.fx.Node], inputs: Sequence[torch.fx.Node], outputs: Sequence[torch.fx.Node],
              constants: "bridge.Constants") -> Tuple[Dict[Any, Any], Dict[str, Any]]:
    """A region's outputs traced again from its inputs alone, for their sizes: fake inputs whose
    dynamic sizes are fresh symbols, named "i<k>_<d>" (input k, dimension d), the region's nodes
    run on them. The graph's own sizes are expressions of the whole program's inputs (a region after
    a strided convolution reads ((s0 - 1) // 2) + 1, which no expression of its own inputs undoes);
    traced again, an output's size is an expression of the region's inputs. Returns the symbols'
    names and each output's fake value; raises what the trace raises."""
    from torch._dynamo.source import ConstantSource
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext
    env = ShapeEnv(duck_shape=False, specialize_zero_one=False)
    mode = FakeTensorMode(shape_env=env, allow_non_fake_inputs=True)
    values: Dict[str, Any] = {}
    names: Dict[Any, Any] = {}
    for k, node in enumerate(inputs):
        recorded = node.meta.get("val")
        if not isinstance(recorded, torch.Tensor):
            raise ValueError(f"input {node.name} is not a tensor")
        dynamic = [DimDynamic.DYNAMIC if isinstance(size, torch.SymInt) else DimDynamic.STATIC for size in recorded.shape]
        fake = mode.from_tensor(bridge.example_of(recorded), source=ConstantSource(f"i{k}"),
                                symbolic_context=StatelessSymbolicContext(dynamic_sizes=dynamic))
        for d, size in enumerate(fake.shape):
            if isinstance(size, torch.SymInt) and size.node.expr.is_Symbol:
                names[size.node.expr] = f"i{k}_{d}"
        values[node.name] = fake

    def read(a: torch.fx.Node) -> Any:
        if a.name in values:
            return values[a.name]
        known = constants.value(a)
        if known is None:
            raise ValueError(f"{a.name} is neither an input of the region nor a weight")
        return known
    with mode, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in nodes:
            values[n.name] = n.target(*torch.fx.node.map_arg(n.args, read), **torch.fx.node.map_arg(n.kwargs, read))
    return names, {n.name: values[n.name] for n in outputs}


def region_meta(inputs: Sequence[torch.fx.Node], outputs: Sequence[torch.fx.Node],
                names: Optional[Dict[Any, Any]] = None, traced: Optional[Dict[str, Any]] = None) -> str:
    """What a Region keeps for torch.export's fake tensors (JSON): each output's dtype and its sizes,
    as numbers or as expressions of the inputs' sizes (`names` and `traced`: _retraced's, or
    _input_names of the region with its weights and the recorded values). Raises ValueError naming
    the output whose size is no expression of them."""
    names = _input_names(inputs) if names is None else names
    out = []
    for node in outputs:
        value = node.meta["val"] if traced is None else traced[node.name]
        try:
            shape = [int(s) if not isinstance(s, torch.SymInt) else _expression(s.node.expr, names) for s in value.shape]
        except ValueError as error:
            raise ValueError(f"{node.name}: {error}") from None
        out.append({"dtype": str(value.dtype).replace("torch.", ""), "shape": shape})
    return json.dumps({"outputs": out})


def _fake_outputs(inputs: Sequence[torch.Tensor], meta: str) -> List[torch.Tensor]:
    sizes = {f"i{k}_{d}": s for k, x in enumerate(inputs) for d, s in enumerate(x.shape)}
    outputs = []
    for out in json.loads(meta)["outputs"]:
        shape = [_evaluate(s, sizes) for s in out["shape"]]
        outputs.append(torch.empty(shape, dtype=getattr(torch, out["dtype"]), device=inputs[0].device if inputs else "cpu"))
    return outputs


_registered = False


def register_fakes() -> None:
    """The fake class of tbk.Region and the fake kernel of tbk::call_region, which torch.export and
    torch.compile trace with (once per process; the library must be loaded)."""
    global _registered
    if _registered:
        return
    _operator()

    @torch._library.register_fake_class("tbk::Region")
    class FakeRegion:  # noqa: F841 - registered by the decorator
        def __init__(self, backend: str, meta: str):
            self.backend_name, self.meta_text = backend, meta

        @classmethod
        def __obj_unflatten__(cls, flattened):
            items = dict(flattened)
            return cls(items["backend"], items["meta"])

        def backend(self) -> str:
            return self.backend_name

        def meta(self) -> str:
            return self.meta_text

    @torch.library.register_fake("tbk::call_region")
    def _(inputs, region):
        meta = region.meta() if hasattr(region, "meta") else region.wrapped_obj.meta()
        return _fake_outputs(inputs, meta)
    _registered = True


# ---- delegating the regions of a graph module --------------------------------------------------

@dataclass
class Report:
    """Where each node of a delegated graph went: the regions (their nodes' names) and, for every
    node left outside, the backend's reason (tbk.bridge.NodeSupport's refusals)."""
    backend: str
    regions: List[List[str]] = field(default_factory=list)
    refusals: Dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.backend}: {len(self.regions)} region{'s' if len(self.regions) != 1 else ''}"]
        for k, nodes in enumerate(self.regions):
            lines.append(f"  region {k}: {len(nodes)} nodes [{', '.join(nodes[:8])}{', ...' if len(nodes) > 8 else ''}]")
        if self.refusals:
            lines.append("  outside:")
            lines += [f"    {name}: {reason}" for name, reason in self.refusals.items()]
        return "\n".join(lines)


def _weights(gm: torch.fx.GraphModule) -> Dict[str, torch.Tensor]:
    """The tensors a graph module's get_attr nodes read: its weights, by node name."""
    out = {}
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            value = _attribute(gm, node.target)
            if isinstance(value, torch.Tensor):
                out[node.name] = value.detach()
    return out


def _attribute(module: torch.nn.Module, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _origin(k: int, nodes: Sequence[torch.fx.Node]) -> str:
    """How a region's call-time errors name it: "region 0: aten.conv2d (model.py:12), ...", at most 8 nodes."""
    shown = [bridge.node_text(n) for n in nodes if n.target is not operator.getitem][:8]
    more = len(nodes) - len(shown)
    return f"region {k}: " + ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _bytes_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


def _options_bytes(options: Dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(options, buffer)
    return buffer.getvalue()


def delegate(gm: torch.fx.GraphModule, backend: str, options: Optional[Dict[str, Any]] = None, *,
             supports: Optional[Callable[[Any], Any]] = None, min_nodes: int = 1,
             where: Optional[str] = None) -> Tuple[torch.fx.GraphModule, Report]:
    """Runs the regions of `gm` that `backend` supports in the backend, in place: each region's
    nodes become one call of tbk::call_region on a tbk.Region attribute (`tbk_region_<k>`), and the
    weights only regions read are dropped. `gm`'s weights must be get_attr nodes (an
    ExportedProgram's module(), or a torch.compile'd graph with its parameters frozen); the regions
    are lowered at the shapes its nodes record (meta "val"), symbolic sizes at their example values,
    and a region whose inputs have symbolic sizes is told its shapes are not static.

    options: the backend's options for every region (as tbk.lower's per-method options). supports:
    a Python override of the supports hook (a torch._C.Node -> True, False or tbk.unsupported(reason)).
    min_nodes: smaller regions stay outside. Returns gm and a Report; warns when nothing was delegated."""
    register_fakes()
    where = where or f"tbk.pt2.delegate({backend!r})"
    options = dict(options or {})
    constants = bridge.Constants(_weights(gm))

    def lower(k, module, nodes, inputs, outputs):
        recorded = [n.meta.get("val") for n in inputs]
        examples = tuple(bridge.example_of(v) for v in recorded)
        static = not any(bridge.is_symbolic(v) for v in recorded)
        region_options = dict(options)
        region_options[_C.REGION_OPTION] = _origin(k, nodes)
        if not static:  # which dimensions change, so that the backend need not guess
            region_options[_C.DYNAMIC_DIMS_OPTION] = bridge.dynamic_dims(recorded)
        return _C.processed_region(module, backend, region_options, examples, static, len(inputs), len(outputs), where)
    output_sizes: Dict[Tuple[Any, ...], Any] = {}  # region (node names) -> _output_sizes, made once

    def sizes_of(nodes, inputs, outputs):
        key = tuple(tuple(n.name for n in group) for group in (nodes, inputs, outputs))
        if key not in output_sizes:
            output_sizes[key] = _output_sizes(nodes, inputs, outputs, constants)
        return output_sizes[key]

    def refuse(nodes, inputs, outputs):  # outputs whose sizes the fake kernel could not give
        refusals = {}
        names, traced = sizes_of(nodes, inputs, outputs)  # (once per region, not per output)
        for node in outputs:
            try:
                region_meta(inputs, [node], names, traced)
            except ValueError as error:
                refusals[node.name] = ("its result's size cannot be written in the sizes of its region's inputs "
                                       f"({error}), which torch.export needs to trace the region's call")
        return refusals
    found, support = bridge.regions(backend, gm.graph, constants, lower, supports=supports, min_nodes=min_nodes,
                                    refuse=refuse)
    report = Report(backend, [[n.name for n in r.nodes] for r in found], dict(support.refusals))
    operators = [n for n in gm.graph.nodes if n.op == "call_function" and not constants.is_constant(n)]
    bridge.warn_if_nothing(where, len(found), support.refusals, len(operators))
    replaced: Dict[torch.fx.Node, torch.fx.Node] = {}  # an earlier region's outputs -> its call's elements
    # (each region's output sizes, as refuse() found them, before any region is replaced: a replaced
    # region's readers read its call)
    sizes = [sizes_of(region.nodes, region.inputs, region.outputs) for region in found]
    for k, region in enumerate(found):
        _replace(gm, k, region, backend, options, replaced, *sizes[k])
    from torch.fx.passes.tools_common import legalize_graph
    legalize_graph(gm)  # a region's call comes after its last node: its outside readers move after it
    _drop_unused(gm)
    return gm, report


def _output_sizes(nodes: Sequence[torch.fx.Node], inputs: Sequence[torch.fx.Node], outputs: Sequence[torch.fx.Node],
                  constants: bridge.Constants) -> Tuple[Dict[Any, Any], Optional[Dict[str, Any]]]:
    """The names and values region_meta writes a region's output sizes from: the region traced
    again from its inputs (_retraced) when the graph's sizes are symbolic, else (or when that trace
    fails) the recorded values with the inputs' and weights' names."""
    if any(bridge.is_symbolic(n.meta.get("val")) for n in inputs):
        try:
            return _retraced(nodes, inputs, outputs, constants)
        except Exception:  # noqa: BLE001 - an operator the fake trace cannot run: the recorded sizes
            pass
    return _input_names(inputs, _region_weights(nodes, constants)), None


def _region_weights(nodes: Sequence[torch.fx.Node], constants: bridge.Constants) -> List[Tuple[torch.fx.Node, torch.Tensor]]:
    """The frozen weights a region's nodes read, with their values."""
    seen: Dict[str, Tuple[torch.fx.Node, torch.Tensor]] = {}
    for node in nodes:
        for a in node.all_input_nodes:
            value = constants.value(a) if a.name not in seen else None
            if value is not None:
                seen[a.name] = (a, value)
    return list(seen.values())


def _replace(gm: torch.fx.GraphModule, k: int, region: bridge.Region, backend: str, options: Dict[str, Any],
             replaced: Dict[torch.fx.Node, torch.fx.Node], names: Dict[Any, Any],
             traced: Optional[Dict[str, Any]]) -> None:
    """One region's nodes as one tbk::call_region call on attribute tbk_region_<k>; `replaced` maps
    the outputs of regions replaced before to what now stands for them, and gains this one's;
    `names` and `traced`: _output_sizes's, for region_meta."""
    region_options = dict(options)
    region_options[_C.REGION_OPTION] = _origin(k, region.nodes)
    obj = torch.classes.tbk.Region(backend, _bytes_tensor(region.processed), _bytes_tensor(_options_bytes(region_options)),
                                   region_meta(region.inputs, region.outputs, names, traced))
    name = f"tbk_region_{k}"
    while hasattr(gm, name):
        name += "_"
    setattr(gm, name, obj)
    graph = gm.graph
    last = region.nodes[-1]
    with graph.inserting_after(last), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a torchbind object is no parameter, buffer or module
        handle = graph.get_attr(name)
    with graph.inserting_after(handle):
        call = graph.call_function(_operator(), ([replaced.get(i, i) for i in region.inputs], handle))
    call.meta["val"] = [o.meta.get("val") for o in region.outputs]
    previous = call
    for i, output in enumerate(region.outputs):
        with graph.inserting_after(previous):
            element = graph.call_function(operator.getitem, (call, i))
        element.meta = dict(output.meta)
        output.replace_all_uses_with(element, delete_user_cb=lambda user: user not in region.nodes)
        replaced[output] = element
        previous = element
    for node in reversed(region.nodes):  # in graph order: its readers inside the region go first
        graph.erase_node(node)


def _drop_unused(gm: torch.fx.GraphModule) -> None:
    """Weights and constants only the delegated regions read leave the module (the regions' payloads
    hold what they need)."""
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op == "get_attr" and not node.users:
            target = node.target
            graph.erase_node(node)
            if not any(n.op == "get_attr" and n.target == target for n in graph.nodes):
                owner_path, _, leaf = target.rpartition(".")
                owner = _attribute(gm, owner_path) if owner_path else gm
                if owner is not None and hasattr(owner, leaf):
                    delattr(owner, leaf)
    graph.lint()
    gm.recompile()
