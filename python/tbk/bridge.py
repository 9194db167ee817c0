"""tbk.bridge: from export graphs to a tbk backend's hooks, for every runtime that starts from one:
torch.export's ATen programs (tbk.export, tbk.compile) and ExecuTorch's Edge programs
(tbk.executorch). One module, so that the hooks see the same thing on every path.

A backend's hooks are written against TorchScript: `supports(const torch::jit::Node&)` and
`preprocess(const torch::jit::Module&, spec)` get TorchScript graphs from tbk.partition and
tbk.lower. The bridge gives them the same from an FX graph (torch.fx.Graph of ATen or Edge
operators):

- script_view: the TorchScript view of a whole graph. Each FX operator node is one TorchScript
  node (plus the prim::ListConstruct/ListUnpack nodes of its lists), spelled as TorchScript spells
  it (Edge's aten::convolution as aten::_convolution, view_copy as view, ...: SPELLINGS), with the
  weights as constants, the example's shapes and dtypes on every value, and the user's source line
  (export's stack_trace) as its source range. A supports hook asked about a node sees its
  producers and consumers, as in tbk.partition.
- NodeSupport: the backend's supports hook asked about every node of a view (a torch.fx
  OperatorSupportBase for CapabilityBasedPartitioner), with each refusal's reason.
- region_module: the TorchScript module of one region of nodes, the method forward that its
  preprocess takes, with the region's example inputs.
- decomposition_filter: which operators not to decompose (torch.export's run_decompositions,
  ExecuTorch's ops_to_not_decompose) because the backend claims them as the author wrote them:
  aten::linear stays aten::linear instead of permute + addmm.
- regions: grouping the supported nodes, then each region through preprocess; a node the backend
  refuses at lowering is left out with its reason and the rest grouped again, as tbk.partition does.
"""
import operator
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import torch
import torch.fx
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase

from . import _C

__all__ = ["SPELLINGS", "ScriptView", "script_view", "NodeSupport", "region_module", "Region",
           "regions", "decomposition_filter", "source_of", "aten_overload", "example_of", "dynamic_dims"]

_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)


# ---- values: examples, types, constants ---------------------------------------------------------

def _size_hint(size: Any) -> int:
    """A recorded size as a number: itself, or for a symbolic size the value it had in the example
    the graph was traced with. Raises ValueError for a size only known at run time."""
    if isinstance(size, torch.SymInt):
        hint = size.node.hint
        if hint is None:
            raise ValueError(f"size {size} is known only at run time (data-dependent); a tbk backend lowers "
                             "a region at the sizes of an example")
        return int(hint)
    return int(size)


def is_symbolic(value: Any) -> bool:
    """Whether a recorded (fake) value is a tensor with a symbolic size: the program is called at
    other sizes (torch.export's dynamic_shapes, Dynamo's dynamic shapes)."""
    return isinstance(value, torch.Tensor) and any(isinstance(size, torch.SymInt) for size in value.shape)


def dynamic_dims(values: Sequence[Any]) -> List[List[int]]:
    """Per recorded value, the dimensions whose size is symbolic (what tbk::dynamic_dims_option
    tells a backend: the runtime may call it at other sizes of exactly those)."""
    return [[d for d, size in enumerate(v.shape) if isinstance(size, torch.SymInt)] if isinstance(v, torch.Tensor)
            else [] for v in values]


def example_of(value: Any) -> Any:
    """A real tensor standing for a recorded (fake) value: its shape (symbolic sizes at the
    example's), strides and dtype, random contents (zeros for integers); other values as they are."""
    if isinstance(value, torch.Tensor):
        shape = tuple(_size_hint(size) for size in value.shape)
        if value.dtype.is_floating_point:
            return torch.randn(shape, dtype=value.dtype)
        if value.dtype == torch.bool:
            return torch.zeros(shape, dtype=torch.bool)
        return torch.zeros(shape, dtype=value.dtype)
    if isinstance(value, torch.SymInt):
        return _size_hint(value)
    return value


def _tensor_type(value: torch.Tensor) -> Any:
    """The complete TorchScript type of a recorded tensor (sizes at the example's, its strides and
    dtype, on the CPU), as tbk.partition's example run sets it."""
    shape = [_size_hint(size) for size in value.shape]
    strides = [_size_hint(stride) for stride in value.stride()]
    meta = torch.empty_strided(shape, strides, dtype=value.dtype, device="meta")
    return torch._C.TensorType.create_from_tensor(meta).with_device(torch.device("cpu"))


# torch.memory_format as TorchScript carries it: an int, c10::MemoryFormat's order
_MEMORY_FORMATS = {torch.contiguous_format: 0, torch.preserve_format: 1, torch.channels_last: 2,
                   torch.channels_last_3d: 3}


def _constant_ivalue(value: Any) -> Any:
    """A Python argument as graph.insertConstant takes it: memory formats as ints, tuples as lists."""
    if isinstance(value, torch.memory_format):
        return _MEMORY_FORMATS[value]
    if isinstance(value, tuple):
        return [_constant_ivalue(v) for v in value]
    if isinstance(value, list):
        return [_constant_ivalue(v) for v in value]
    return value


def aten_overload(target: Any) -> Optional[torch._ops.OpOverload]:
    """The ATen (or other c10) operator overload an FX node calls: itself, or an Edge operator's
    (ExecuTorch's EdgeOpOverload wraps one as `_op`); None for anything else."""
    if isinstance(target, torch._ops.OpOverload):
        return target
    wrapped = getattr(target, "_op", None)
    return wrapped if isinstance(wrapped, torch._ops.OpOverload) else None


def _is_dequantize(node: torch.fx.Node) -> bool:
    """Whether an FX node is one of PT2E quantization's dequantize operators."""
    return aten_overload(node.target)._schema.name.startswith("quantized_decomposed::dequantize")


class Constants:
    """The FX nodes whose values are known when lowering: the weights (placeholders given in
    `values`: parameters, buffers, lifted constants) and every node computed from them alone
    (Edge's permute_copy of a weight, as it writes a linear layer), evaluated once. A backend sees
    them as constants, as tbk.partition(freeze=True) shows frozen weights. Except PT2E
    quantization's dequantize of a quantized weight (quantized_decomposed's dequantize_per_channel
    and dequantize_per_tensor): it stays an operator on its int8 constant, so that a backend that
    runs int8 sees the integers and their scales (and one that does not dequantizes them)."""

    def __init__(self, values: Mapping[str, Any]):
        self._values: Dict[str, Any] = dict(values)
        self._known: Dict[str, Any] = {}

    def value(self, node: torch.fx.Node) -> Optional[Any]:
        """The node's value when it is known at lowering (a tensor), else None."""
        if node.name in self._known:
            return self._known[node.name]
        value = self._values.get(node.name) if node.op in ("placeholder", "get_attr") else None
        if value is None and node.op == "call_function" and node.all_input_nodes and \
                aten_overload(node.target) is not None and not _is_dequantize(node) and \
                all(self.value(a) is not None for a in node.all_input_nodes):
            read = lambda a: self.value(a) if isinstance(a, torch.fx.Node) else a  # noqa: E731
            with torch.no_grad():
                value = aten_overload(node.target)(*torch.fx.node.map_aggregate(node.args, read),
                                                   **torch.fx.node.map_aggregate(node.kwargs, read))
            if not isinstance(value, torch.Tensor):
                value = None
        self._known[node.name] = value
        return value

    def is_constant(self, node: torch.fx.Node) -> bool:
        return self.value(node) is not None


# ---- source locations ---------------------------------------------------------------------------

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in [^\n]*\n([^\n]*)')
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep


def source_of(node: torch.fx.Node) -> Optional[Tuple[str, int, str]]:
    """Where the user wrote a node: (file, line, that line's text) of the innermost frame of its
    stack_trace (torch.export's, Dynamo's) outside torch's own files; None when it has none."""
    trace = node.meta.get("stack_trace")
    if not trace:
        return None
    frames = [(f, int(line), text.strip()) for f, line, text in _FRAME.findall(trace)]
    outside = [frame for frame in frames if not os.path.abspath(frame[0]).startswith(_TORCH_DIR)]
    chosen = outside or frames
    return chosen[-1] if chosen else None


# ---- spellings: export's operators as TorchScript writes them ---------------------------------

@dataclass
class _Spelled:
    """An FX node's operator as TorchScript spells it: its kind, its arguments (Python values and
    FX nodes, in the schema's order) and, for a node whose FX result is a tuple, which element
    each TorchScript output is (None: every element, in order)."""
    kind: str
    args: List[Any]
    elements: Optional[List[int]] = None


def _first_only(spelled: _Spelled, used: Set[int]) -> Optional[_Spelled]:
    """A spelling that keeps element 0 of a tuple result only: valid when the graph reads no other."""
    return spelled if used <= {0} else None


def _convolution(args, used):  # aten::convolution as torch.jit.trace records it
    return _Spelled("aten::_convolution", args + [False, False, True, True])


def _batch_norm_no_training(args, used):
    x, w, b, mean, var, momentum, eps = args
    return _first_only(_Spelled("aten::batch_norm", [x, w, b, mean, var, False, momentum, eps, True], [0]), used)


def _max_pool2d_with_indices(args, used):
    return _first_only(_Spelled("aten::max_pool2d", args, [0]), used)


def _native_layer_norm(args, used):
    return _first_only(_Spelled("aten::layer_norm", args + [False], [0]), used)


def _softmax(args, used):  # _softmax(x, dim, half_to_float) -> softmax(x, dim, dtype=None)
    return _Spelled("aten::softmax", [args[0], args[1], None])


# ExecuTorch's dim orders of the channels-last formats as memory formats (exir/dim_order_utils.py)
_DIM_ORDER_FORMATS = {(0, 2, 3, 1): torch.channels_last, (0, 2, 3, 4, 1): torch.channels_last_3d}


def _clone_dim_order(args, used):
    """Edge's dim_order_ops::_clone_dim_order(x, non_blocking, dim_order), what export makes of an
    eval-mode dropout or x.clone(), as aten::clone(x, memory_format): None as preserve, 0 .. n - 1 as
    contiguous, channels last's order as torch.channels_last; another order has no spelling."""
    x, _, dim_order = (args + [False, None])[:3]
    if dim_order is None:
        return _Spelled("aten::clone", [x, None])
    if isinstance(dim_order, torch.fx.Node) or not all(isinstance(d, int) for d in dim_order):
        return None
    order = tuple(dim_order)
    if order == tuple(range(len(order))):
        return _Spelled("aten::clone", [x, torch.contiguous_format])
    memory_format = _DIM_ORDER_FORMATS.get(order)
    return _Spelled("aten::clone", [x, memory_format]) if memory_format is not None else None


# Operator (its schema name, "aten::convolution", or "name.overload") -> how TorchScript writes it:
# a function of the arguments in schema order and the tuple elements the graph reads, returning a
# _Spelled or None (no spelling for these arguments: the operator keeps its own name). Edge's
# copying view operators (view_copy, permute_copy, ...) are spelled as their view forms by rule
# (_copy_spelling). Every other operator is spelled as its schema names it: aten::addmm,
# aten::relu, aten::mean.dim ... are the same in TorchScript.
SPELLINGS: Dict[str, Callable[[List[Any], Set[int]], Optional[_Spelled]]] = {
    "aten::convolution": _convolution,
    "aten::_native_batch_norm_legit_no_training": _batch_norm_no_training,
    "aten::max_pool2d_with_indices": _max_pool2d_with_indices,
    "aten::native_layer_norm": _native_layer_norm,
    "aten::_adaptive_avg_pool2d": lambda args, used: _Spelled("aten::adaptive_avg_pool2d", args),
    "aten::_softmax": _softmax,
    "dim_order_ops::_clone_dim_order": _clone_dim_order,
}


def _copy_spelling(op: torch._ops.OpOverload) -> Optional[str]:
    """view_copy -> aten::view: Edge's copying form of a view operator as the view operator, when
    the view has an overload of the same name and arguments."""
    name = op._schema.name
    if not (name.startswith("aten::") and name.endswith("_copy")):
        return None
    base = getattr(torch.ops.aten, name[len("aten::"):-len("_copy")], None)
    overload = getattr(base, op._overloadname, None) if base is not None else None
    if overload is None:
        return None
    same = [(a.name, str(a.type)) for a in overload._schema.arguments] == \
           [(a.name, str(a.type)) for a in op._schema.arguments]
    return overload._schema.name if same else None


def _schema_args(op: torch._ops.OpOverload, node: torch.fx.Node) -> List[Any]:
    """The node's arguments in its schema's order, defaults filled in (keyword-only ones too)."""
    out = []
    for i, arg in enumerate(op._schema.arguments):
        if i < len(node.args) and not arg.kwarg_only:
            out.append(node.args[i])
        elif arg.name in node.kwargs:
            out.append(node.kwargs[arg.name])
        elif arg.has_default_value():
            out.append(arg.default_value)
        else:
            raise ValueError(f"argument {arg.name} of {op._schema.name} is missing")
    return out


def _used_elements(node: torch.fx.Node) -> Set[int]:
    """The elements of a node's tuple result that the graph reads (getitem), or {0} when the graph
    reads the result whole... as a single value."""
    used = set()
    for user in node.users:
        if user.target is operator.getitem and isinstance(user.args[1], int):
            used.add(user.args[1])
        else:
            used.add(-1)
    return used


def spell(node: torch.fx.Node) -> Optional[_Spelled]:
    """How TorchScript writes an FX operator node; None when it is no operator call (a getitem, a
    Python function, a higher-order operator)."""
    op = aten_overload(node.target)
    if op is None:
        return None
    args = _schema_args(op, node)
    name = op._schema.name
    rule = SPELLINGS.get(f"{name}.{op._overloadname}", SPELLINGS.get(name))
    spelled = rule(args, _used_elements(node)) if rule is not None else None
    if spelled is None:
        spelled = _Spelled(_copy_spelling(op) or name, args)
    return spelled


# ---- the TorchScript view ---------------------------------------------------------------------

@dataclass
class ScriptView:
    """The TorchScript view of some of an FX graph's nodes (see the module's text).

    graph: the TorchScript graph (inputs: `inputs`' values, with a `self` first when made for a
    module); nodes: FX node name -> the TorchScript nodes made for it, its own first (then the list
    nodes of its arguments and result); missing: FX node name -> why it has no TorchScript node;
    values: FX node name -> its TorchScript value (or, for a tuple or list result, its elements').
    """
    graph: torch._C.Graph
    inputs: List[torch.fx.Node]
    nodes: Dict[str, List[torch._C.Node]] = field(default_factory=dict)
    missing: Dict[str, str] = field(default_factory=dict)
    values: Dict[str, Any] = field(default_factory=dict)


class _ViewBuilder:
    def __init__(self, constants: Constants, with_self: bool):
        self.constants = constants
        self.graph = torch._C.Graph()
        if with_self:
            self.graph.addInput("self")
        self.view = ScriptView(self.graph, [])

    def add_input(self, node: torch.fx.Node) -> None:
        value = self.graph.addInput(_debug_name(node.name))
        recorded = node.meta.get("val")
        if isinstance(recorded, torch.Tensor):
            value.setType(_tensor_type(recorded))
        elif isinstance(recorded, (int, torch.SymInt)):
            value.setType(torch._C.IntType.get())
        elif isinstance(recorded, (float, torch.SymFloat)):
            value.setType(torch._C.FloatType.get())
        self.view.inputs.append(node)
        self.view.values[node.name] = value

    def constant(self, value: Any) -> torch._C.Value:
        return self.graph.insertConstant(_constant_ivalue(value))

    def argument(self, value: Any, made: List[torch._C.Node], declared: Any = None) -> torch._C.Value:
        """An argument as a TorchScript value: an FX node's value, a constant, or a list of them
        (a prim::ListConstruct, added to `made`). `declared`: the schema's type of the argument,
        for an empty list. A node that has no TorchScript value itself is read as a graph input of
        its type, as a TorchScript node reads what a node outside a region computes."""
        if isinstance(value, torch.fx.Node):
            known = self.constants.value(value)
            if known is not None:
                return self.constant(known)
            if value.name not in self.view.values:
                self.add_input(value)
            mapped = self.view.values[value.name]
            if isinstance(mapped, list):
                raise _NoCounterpart(f"its argument {value.name} is a tuple or list, not a value")
            return mapped
        if isinstance(value, (list, tuple)) and any(isinstance(v, torch.fx.Node) for v in value):
            items = [self.argument(v, made) for v in value]
            construct = self.graph.create("prim::ListConstruct", items)
            construct.output().setType(torch._C.ListType(_element_type(items)))
            self.graph.insertNode(construct)
            made.append(construct)
            return construct.output()
        if isinstance(value, (list, tuple)) and not value:
            return _C.empty_list_constant(self.graph, _list_element_text(declared))
        if isinstance(value, _SYMBOLIC):
            raise _NoCounterpart("an argument is a size known at run time only")
        return self.constant(value)

    def add(self, node: torch.fx.Node) -> None:
        """The TorchScript node(s) of one FX node, or why it has none (view.missing)."""
        try:
            if node.target is operator.getitem:
                self._element(node)
            elif self.constants.is_constant(node):
                self.view.values[node.name] = self.constant(self.constants.value(node))
            else:
                self._operator(node)
        except _NoCounterpart as why:
            self.view.missing[node.name] = str(why)

    def _element(self, node: torch.fx.Node) -> None:
        source, index = node.args
        values = self.view.values.get(source.name) if isinstance(source, torch.fx.Node) else None
        if not isinstance(values, list) or not isinstance(index, int) or values[index] is None:
            raise _NoCounterpart(f"element {index} of {getattr(source, 'name', source)} has no TorchScript value")
        self.view.values[node.name] = values[index]

    def _operator(self, node: torch.fx.Node) -> None:
        if node.op != "call_function":
            raise _NoCounterpart(f"a {node.op} node")
        try:
            spelled = spell(node)
        except ValueError as error:
            raise _NoCounterpart(str(error))
        if spelled is None:
            raise _NoCounterpart(f"{_target_text(node)} is no operator TorchScript has")
        made: List[torch._C.Node] = []
        declared = [a.type for a in aten_overload(node.target)._schema.arguments]
        inputs = [self.argument(a, made, declared[i] if i < len(declared) else None)
                  for i, a in enumerate(spelled.args)]
        recorded = node.meta.get("val")
        returns = aten_overload(node.target)._schema.returns
        outputs = 1 if spelled.elements is not None else max(len(returns), 1)
        ts_node = self.graph.create(spelled.kind, inputs, outputs)
        self.graph.insertNode(ts_node)
        if ts_node.schema() == "(no schema)":
            ts_node.destroy()
            for m in reversed(made):
                m.destroy()
            raise _NoCounterpart(f"TorchScript has no {spelled.kind} taking these arguments")
        self._type_outputs(ts_node, recorded, spelled, returns)
        _set_source(ts_node, node)
        nodes = [ts_node] + made
        if spelled.elements is not None:  # one element of a tuple result, the others unread
            self.view.values[node.name] = [ts_node.output()]
        elif len(returns) > 1:
            self.view.values[node.name] = list(ts_node.outputs())
        elif isinstance(recorded, (list, tuple)):  # a list result: its elements through a ListUnpack
            unpack = self.graph.create("prim::ListUnpack", [ts_node.output()], len(recorded))
            self.graph.insertNode(unpack)
            for out, value in zip(unpack.outputs(), recorded):
                out.setType(_tensor_type(value) if isinstance(value, torch.Tensor) else torch._C.TensorType.get())
            _set_source(unpack, node)
            nodes.append(unpack)
            self.view.values[node.name] = list(unpack.outputs())
        else:
            self.view.values[node.name] = ts_node.output()
        self.view.nodes[node.name] = nodes

    @staticmethod
    def _type_outputs(ts_node, recorded, spelled: _Spelled, returns) -> None:
        recorded_list = list(recorded) if isinstance(recorded, (list, tuple)) and len(returns) > 1 else [recorded]
        if spelled.elements is not None:
            recorded_list = [recorded_list[i] if i < len(recorded_list) else None for i in spelled.elements]
        for out, value, ret in zip(ts_node.outputs(), recorded_list, list(returns) or [None]):
            if isinstance(value, torch.Tensor):
                out.setType(_tensor_type(value))
            elif ret is not None:
                out.setType(ret.type if not str(ret.type).startswith("SymInt") else torch._C.IntType.get())


def _element_type(items: Sequence[torch._C.Value]) -> Any:
    """The element type of a list of these values, as TorchScript types a list literal."""
    types = [item.type() for item in items]
    if all(isinstance(t, torch._C.TensorType) for t in types):
        return torch._C.TensorType.get()
    for simple in (torch._C.IntType, torch._C.FloatType, torch._C.BoolType):
        if types and all(isinstance(t, simple) for t in types):
            return simple.get()
    if all(isinstance(t, (torch._C.TensorType, torch._C.NoneType)) for t in types):
        return torch._C.OptionalType(torch._C.TensorType.get())
    return torch._C.AnyType.get()


def _list_element_text(declared: Any) -> str:
    """The element type of a schema's list argument type ("int[]", "List[int]", "Optional[List[int]]",
    "SymInt[]") as int, float, bool or Tensor (int when it cannot tell)."""
    text = str(declared) if declared is not None else ""
    for name, element in (("Tensor", "Tensor"), ("float", "float"), ("bool", "bool")):
        if name in text:
            return element
    return "int"


class _NoCounterpart(Exception):
    """An FX node that has no TorchScript node, and why."""


def _debug_name(name: str) -> str:
    """An FX name as a TorchScript debug name (which must not end in digits after a dot)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).rstrip("0123456789") or "v"


def _target_text(node: torch.fx.Node) -> str:
    op = aten_overload(node.target)
    if op is not None:
        return f"{op._schema.name}.{op._overloadname}" if op._overloadname != "default" else op._schema.name
    return getattr(node.target, "__name__", str(node.target))


def _set_source(ts_node: torch._C.Node, node: torch.fx.Node) -> None:
    """The TorchScript node's source range: the user's line of the FX node (tbk::node_text then
    names it, "aten::relu (model.py:12)"); a node without a stack trace is named by its FX name."""
    source = source_of(node)
    if source is not None:
        _C.set_source_range(ts_node, source[0], source[1], source[2])
    else:
        _C.set_source_range(ts_node, f"<graph node {node.name}>", 1, node.name)


def script_view(nodes: Iterable[torch.fx.Node], constants: Constants,
                inputs: Sequence[torch.fx.Node] = (), outputs: Sequence[torch.fx.Node] = (),
                with_self: bool = False) -> ScriptView:
    """The TorchScript view of `nodes` (in order) of one FX graph: `inputs` (FX nodes, placeholders
    of the graph or values a region reads) become its graph inputs, `constants` constants; the
    graph returns `outputs` (one value, or a tuple of several). A node whose arguments or operator
    have no TorchScript form is in `missing` with why."""
    builder = _ViewBuilder(constants, with_self)
    for node in inputs:
        builder.add_input(node)
    for node in nodes:
        if node.op == "call_function":
            builder.add(node)
    values = []
    for node in outputs:
        value = builder.view.values.get(node.name)
        if value is None or isinstance(value, list):
            known = constants.value(node)
            if known is None:
                raise ValueError(f"output {node.name} has no TorchScript value: "
                                 f"{builder.view.missing.get(node.name, 'a tuple or list')}")
            value = builder.constant(known)
        values.append(value)
    if len(values) == 1:
        builder.graph.registerOutput(values[0])
    elif values:
        pack = builder.graph.create("prim::TupleConstruct", values)
        pack.output().setType(torch._C.TupleType([v.type() for v in values]))
        builder.graph.insertNode(pack)
        builder.graph.registerOutput(pack.output())
    return builder.view


def graph_view(graph: torch.fx.Graph, constants: Constants) -> ScriptView:
    """The TorchScript view of a whole FX graph: its placeholders that are not constants are the
    inputs, every operator node is in it."""
    inputs = [n for n in graph.nodes if n.op == "placeholder" and not constants.is_constant(n)]
    return script_view(graph.nodes, constants, inputs)


# ---- asking a backend's supports hook ---------------------------------------------------------

class NodeSupport(OperatorSupportBase):
    """A tbk backend's supports hook asked about each FX node of a graph, through its TorchScript
    view (the node among its producers and consumers). `refusals` (FX node name -> reason) says why
    a node stays outside, in the backend's words. `supports`: a Python override taking a
    torch._C.Node and returning True, False or tbk.unsupported(reason), asked instead of the hook.

    Beyond the hook: an element of a tuple result (getitem) goes with its node; a node computed
    from weights alone goes with its readers; a node whose result or argument is a size known at
    run time only, or whose argument is not a tensor, stays outside (a region takes and returns
    tensors); `refused` adds refusals from lowering (preprocess named the node)."""

    def __init__(self, backend: str, graph: torch.fx.Graph, constants: Constants,
                 supports: Optional[Callable[[Any], Any]] = None):
        self.backend = backend
        self.constants = constants
        self.view = graph_view(graph, constants)
        self.supports = supports
        self.refusals: Dict[str, str] = {}
        self.refused: Dict[str, str] = {}
        self._answers: Dict[str, bool] = {}

    def is_node_supported(self, submodules: Mapping[str, torch.nn.Module], node: torch.fx.Node) -> bool:
        if node.name not in self._answers:
            self._answers[node.name] = False  # a cycle through readers (never in a DAG) answers no
            self._answers[node.name] = self._answer(node)
        return self._answers[node.name]

    def forget(self) -> None:
        """Asks every node again (after `refused` grew)."""
        self._answers.clear()
        self.refusals = {}

    def _refuse(self, node: torch.fx.Node, reason: str) -> bool:
        self.refusals[node.name] = reason
        return False

    def _answer(self, node: torch.fx.Node) -> bool:
        if node.op != "call_function":
            return False
        if node.name in self.refused:
            return self._refuse(node, self.refused[node.name])
        if node.target is operator.getitem:
            source = node.args[0]
            return isinstance(source, torch.fx.Node) and self.is_node_supported({}, source)
        if self.constants.is_constant(node):  # computed from weights: it goes with its readers
            return bool(node.users) and all(self.is_node_supported({}, user) for user in node.users)
        recorded = node.meta.get("val")
        if isinstance(recorded, _SYMBOLIC) or isinstance(recorded, (int, float, bool)):
            return self._refuse(node, "its result is a size computed at run time, not a tensor; a tbk region "
                                      "takes and returns tensors")
        for a in node.all_input_nodes:
            if self.constants.is_constant(a):
                continue
            value = a.meta.get("val")
            if isinstance(value, _SYMBOLIC) or isinstance(value, (int, float, bool)):
                return self._refuse(node, f"its argument {a.name} is a size computed at run time; a tbk region "
                                          "takes tensors and constants")
        if node.name in self.view.missing:
            return self._refuse(node, "it has no TorchScript form: " + self.view.missing[node.name])
        for ts_node in self.view.nodes.get(node.name, []):
            refusal = self._ask(ts_node)
            if refusal:
                return self._refuse(node, refusal)
        return node.name in self.view.nodes

    def _ask(self, ts_node: torch._C.Node) -> str:
        if self.supports is None:
            return _C.supports_refusal(self.backend, ts_node)
        answer = self.supports(ts_node)
        if isinstance(answer, bool):
            return "" if answer else "not supported by the backend"
        if hasattr(answer, "reason") and not answer:
            return "not supported by the backend: " + answer.reason
        raise TypeError(f"supports returned {type(answer).__name__} for {ts_node.kind()}; return True, False "
                        "or tbk.unsupported(reason)")


# ---- regions: grouping and lowering -------------------------------------------------------------

@dataclass
class Region:
    """One region of an FX graph lowered to a backend: its nodes (in graph order), its inputs (FX
    nodes it reads that are not constants: tensors), its outputs (its nodes read outside it, or by
    the graph's output), and the processed bytes its backend's preprocess made
    (tbk/executorch_codec.hpp's format, which tbk.executorch, tbk.export and tbk.compile share)."""
    nodes: List[torch.fx.Node]
    inputs: List[torch.fx.Node]
    outputs: List[torch.fx.Node]
    processed: bytes = b""
    static_shapes: bool = True


def region_boundary(nodes: Sequence[torch.fx.Node], constants: Constants) -> Tuple[List[torch.fx.Node], List[torch.fx.Node]]:
    """A region's inputs and outputs, in graph order."""
    inside = {n.name for n in nodes}
    inputs: List[torch.fx.Node] = []
    outputs: List[torch.fx.Node] = []
    for n in nodes:
        for a in n.all_input_nodes:
            if a.name not in inside and not constants.is_constant(a) and a not in inputs:
                inputs.append(a)
        if n.target is not operator.getitem and isinstance(n.meta.get("val"), (tuple, list)):
            continue  # a tuple or list result leaves through its elements
        if any(u.name not in inside for u in n.users) and not constants.is_constant(n):
            outputs.append(n)
    return inputs, outputs


def region_module(nodes: Sequence[torch.fx.Node], constants: Constants,
                  inputs: Optional[Sequence[torch.fx.Node]] = None,
                  outputs: Optional[Sequence[torch.fx.Node]] = None) -> Tuple[Any, List[torch.fx.Node], List[torch.fx.Node]]:
    """The TorchScript module (a torch._C.ScriptModule) of a region of `nodes`: method forward takes
    the region's inputs and returns its output (a tuple of them when there are several); with its
    inputs and outputs (region_boundary's, unless given: a delegated program's own order). Raises
    ValueError when a node has no TorchScript form."""
    found_inputs, found_outputs = region_boundary(nodes, constants)
    inputs = list(found_inputs if inputs is None else inputs)
    outputs = list(found_outputs if outputs is None else outputs)
    view = script_view(nodes, constants, inputs, outputs, with_self=True)
    for n in nodes:
        if n.name in view.missing and not constants.is_constant(n):
            raise ValueError(f"{n.name}: {view.missing[n.name]}")
    return _C.module_from_graph(view.graph, "forward"), inputs, outputs


def node_text(node: torch.fx.Node) -> str:
    """How tbk names an FX node in messages: its operator and the user's line where export kept it,
    "aten.add.Tensor (model.py:12)", else its name in the graph."""
    source = source_of(node)
    where = f"{source[0]}:{source[1]}" if source else f"graph node {node.name}"
    return f"{_target_text(node)} ({where})"


def _named_in(message: str, nodes: Sequence[torch.fx.Node], view_nodes: Mapping[str, List[torch._C.Node]]) -> Dict[str, str]:
    """The region's FX nodes a lowering error names as tbk::node_text does, with what it says after
    the name (the backend's reason)."""
    named: Dict[str, str] = {}
    for node in nodes:
        for ts_node in view_nodes.get(node.name, [])[:1]:
            text = _C.node_text(ts_node) + ": "
            at = message.find(text)
            if at >= 0:
                named[node.name] = message[at + len(text):]
    return named


def regions(backend: str, graph: torch.fx.Graph, constants: Constants,
            lower: Callable[[int, Any, List[torch.fx.Node], List[torch.fx.Node], List[torch.fx.Node]], bytes],
            supports: Optional[Callable[[Any], Any]] = None,
            min_nodes: int = 1,
            refuse: Optional[Callable[[List[torch.fx.Node], List[torch.fx.Node], List[torch.fx.Node]], Dict[str, str]]] = None
            ) -> Tuple[List[Region], NodeSupport]:
    """The regions of `graph` a backend runs: the nodes its supports hook claims, grouped by torch.fx's
    CapabilityBasedPartitioner (connected, without cycles), each lowered with `lower(k, module, nodes,
    inputs, outputs) -> processed bytes` (k: its index, in graph order). A backend without a supports hook gets every operator
    node as one region. When lowering a region fails naming some of its nodes (as tbk::node_text
    does), those nodes are left out with the reason and the graph grouped again, until every region
    lowers: each pass collects every refusal of every group before grouping again, and a region
    that comes back unchanged at the same position is not lowered again. A failure that names no
    node is raised. `refuse(nodes, inputs, outputs) -> {node name: reason}` may leave nodes out
    before any region is lowered (the runtime's own limits; with no supports hook, where the method
    is one region, its refusal is raised). Returns the regions and the NodeSupport whose `refusals`
    say why the others stay outside."""
    support = NodeSupport(backend, graph, constants, supports)
    whole = supports is None and not _C.has_supports(backend)
    # (position, nodes, inputs, outputs) -> processed bytes: a region grouped again unchanged, at
    # the same position, is not lowered again
    lowered: Dict[Tuple[Any, ...], bytes] = {}
    runtime_refusals: Dict[Tuple[Any, ...], Dict[str, str]] = {}  # (nodes, inputs, outputs) -> refuse's answer
    while True:
        if whole:
            # every operator node, those computed from weights alone with the nodes that read them
            groups = [[n for n in graph.nodes if n.op == "call_function"]]
            groups = [g for g in groups if any(not constants.is_constant(n) for n in g)]
        else:
            gm = _owning_module(graph)
            proposed = CapabilityBasedPartitioner(gm, support, allows_single_node_partition=True).propose_partitions()
            order = {n: i for i, n in enumerate(graph.nodes)}
            groups = [sorted(p.nodes, key=order.__getitem__) for p in proposed]
            # a group of weight computations or tuple elements alone stays outside
            groups = [g for g in groups if sum(1 for n in g if n.target is not operator.getitem and
                                                not constants.is_constant(n)) >= min_nodes]
        out: List[Region] = []
        refused_now: Dict[str, str] = {}
        built = []  # (nodes, module, inputs, outputs, names) per group, in graph order
        for nodes in sorted(groups, key=lambda g: order_of(graph, g[0])):
            try:
                module, inputs, outputs = region_module(nodes, constants)
            except ValueError as error:
                raise ValueError(f"tbk({backend}): a region of {len(nodes)} nodes has no TorchScript form: {error}")
            names = tuple(tuple(n.name for n in group) for group in (nodes, inputs, outputs))
            if names not in runtime_refusals:
                runtime_refusals[names] = refuse(nodes, inputs, outputs) if refuse is not None else {}
            refused_now.update(runtime_refusals[names])
            built.append((nodes, module, inputs, outputs, names))
        if refused_now and whole:  # one region of every node: nothing to group again
            raise RuntimeError(f"tbk({backend}): the method cannot be one region: " +
                               "; ".join(f"{name}: {why}" for name, why in refused_now.items()))
        for k, (nodes, module, inputs, outputs, names) in enumerate(built if not refused_now else []):
            # (lowered only when the runtime refused nothing; k is the region's index when all lower)
            key = (k, *names)
            if key not in lowered:
                try:
                    lowered[key] = lower(k, module, nodes, inputs, outputs)
                except Exception as error:  # noqa: BLE001 - the backend's refusal, any type
                    view = script_view(nodes, constants, inputs, outputs, with_self=True)
                    named = _named_in(str(error), nodes, view.nodes)
                    if not named or whole:
                        raise
                    refused_now.update({name: "refused by the backend at lowering: " + reason
                                        for name, reason in named.items()})
                    continue
            out.append(Region(nodes, inputs, outputs, lowered[key],
                              not any(is_symbolic(n.meta.get("val")) for n in inputs)))
        if not refused_now:
            return out, support
        # torch.fx's partitioner puts a tuple's elements (getitem) with the node that makes the
        # tuple, whatever their own answer: an element refused leaves its source node out
        by_name = {n.name: n for n in graph.nodes}
        for name in list(refused_now):
            node = by_name.get(name)
            if node is not None and node.target is operator.getitem and isinstance(node.args[0], torch.fx.Node):
                refused_now.setdefault(node.args[0].name, f"its element {name}: {refused_now[name]}")
        if not set(refused_now) - set(support.refused):  # (never loop: each pass must leave a node out)
            raise RuntimeError(f"tbk({backend}): grouping the graph again left no other node out; the nodes refused "
                               f"last: {', '.join(sorted(refused_now))}")
        support.refused.update(refused_now)
        support.forget()


def order_of(graph: torch.fx.Graph, node: torch.fx.Node) -> int:
    for i, n in enumerate(graph.nodes):
        if n is node:
            return i
    return -1


def _owning_module(graph: torch.fx.Graph) -> torch.fx.GraphModule:
    owner = graph.owning_module
    return owner if owner is not None else torch.fx.GraphModule(torch.nn.Module(), graph)


# ---- decompositions -----------------------------------------------------------------------------

def _decomposable() -> Set[Any]:
    """The operators torch.export's default decompositions decompose (its table, which holds the
    CompositeImplicitAutograd operators too)."""
    from torch.export import default_decompositions
    return set(default_decompositions().keys())


def decomposition_filter(backend: str, graph: torch.fx.Graph, constants: Constants,
                         supports: Optional[Callable[[Any], Any]] = None,
                         lower: Optional[Callable[..., bytes]] = None
                         ) -> Tuple[List[torch._ops.OpOverload], Callable[[torch.fx.Node], bool]]:
    """Which operators of `graph` (an ATen program before decomposition) to keep from being
    decomposed because the backend claims them as written: the decomposable operators among the
    nodes its supports hook claims, and a filter that says, per node, whether the hook claimed it
    (ExecuTorch's Partitioner.ops_to_not_decompose returns exactly this pair). With `lower` (as
    regions() takes it), the graph's regions are lowered first and a node is claimed only when its
    region lowers with it: an operator kept from decomposition that the backend then refused would
    be left with no kernel. A node the filter does not know (another graph's) is claimed when the
    hook claims it in its own graph."""
    support = NodeSupport(backend, graph, constants, supports)
    in_regions: Optional[Set[str]] = None
    if lower is not None:
        found, support = regions(backend, graph, constants, lower, supports=supports)
        in_regions = {n.name for r in found for n in r.nodes}
    decomposable = _decomposable()
    claimed: Dict[str, bool] = {}  # node name -> claimed (for this graph, and any graph of the same text)
    ops: List[torch._ops.OpOverload] = []
    for node in graph.nodes:
        op = aten_overload(node.target) if node.op == "call_function" else None
        if op is None or op not in decomposable:
            continue
        claimed[node.name] = support.is_node_supported({}, node) and (in_regions is None or node.name in in_regions)
        if claimed[node.name] and op not in ops:
            ops.append(op)
    text = str(graph)
    same: Dict[int, bool] = {id(graph): True}  # graph id -> whether it reads as this graph
    others: Dict[int, NodeSupport] = {}

    def keep(node: torch.fx.Node) -> bool:
        graph_of = node.graph
        if id(graph_of) not in same:
            same[id(graph_of)] = str(graph_of) == text
        if same[id(graph_of)] or node.name in claimed:  # (names outlive functionalization and lowering)
            return claimed.get(node.name, False)
        if id(graph_of) not in others:
            owner = graph_of.owning_module
            values = {}
            if owner is not None:  # a graph after lowering: its weights are get_attr or constants
                values = {n.name: getattr(owner, n.target, None) for n in graph_of.nodes
                          if n.op == "get_attr" and isinstance(getattr(owner, n.target, None), torch.Tensor)}
            others[id(graph_of)] = NodeSupport(backend, graph_of, Constants(values), supports)
        return others[id(graph_of)].is_node_supported({}, node)
    return ops, keep


def warn_if_nothing(what: str, delegated: int, refusals: Mapping[str, str], nodes: int) -> None:
    """One warning when a partitioner delegated nothing of a graph with operator nodes: the first
    reasons the backend gave, each with the nodes it gave it for, so that a claim that never
    matched is not silent."""
    if delegated or not nodes:
        return
    by_reason: Dict[str, List[str]] = {}
    for name, reason in refusals.items():
        by_reason.setdefault(reason, []).append(name)
    shown = "; ".join(f"{reason} ({', '.join(sorted(names)[:4])}{', ...' if len(names) > 4 else ''})"
                      for reason, names in list(by_reason.items())[:3])
    more = f"; and {len(by_reason) - 3} more reasons" if len(by_reason) > 3 else ""
    warnings.warn(f"{what} delegated none of the graph's {nodes} nodes; the backend's reasons: {shown}{more}",
                  stacklevel=3)
