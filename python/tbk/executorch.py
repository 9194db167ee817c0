"""tbk.executorch: lowering to a tbk backend in ExecuTorch programs (.pte), from the backend's own
C++ preprocess and supports hook, the ones tbk.lower and tbk.partition use.

    import torch, tbk.executorch
    from executorch.exir import to_edge_transform_and_lower
    torch.ops.load_library("libcustom_backend.so")  # registers it for TorchScript and ExecuTorch
    program = to_edge_transform_and_lower(
        torch.export.export(model, inputs),
        partitioner=[tbk.executorch.partitioner("custom_backend")]).to_executorch()
    open("model.pte", "wb").write(program.buffer)

Each delegated subgraph becomes the TorchScript module the backend's preprocess takes: the
subgraph traced (torch.jit.trace) with example inputs of the shapes and dtypes its nodes record,
lowered as method "forward". Needs the executorch package (executorch==1.5.1 beside torch 2.13);
the runtime side is the backend library's TBK_REGISTER_EXECUTORCH_BACKEND (tbk/executorch.hpp).
docs/executorch.md has the whole story.
"""
import io
from operator import getitem as _getitem
import warnings
from typing import Any, Dict, List, Mapping, Optional

import torch
from executorch.exir.backend.backend_details import BackendDetails, PreprocessResult
from executorch.exir.backend.compile_spec_schema import CompileSpec
from executorch.exir.backend.partitioner import DelegationSpec, Partitioner, PartitionResult
from torch._export.utils import (get_buffer, get_lifted_tensor_constant, get_param, is_buffer,
                                 is_lifted_tensor_constant, is_param)
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase

from . import _C

__all__ = ["partitioner", "backend_details", "encode_option", "decode_option", "executorch_version"]


def encode_option(value: Any) -> bytes:
    """A compile-spec option's value as ExecuTorch carries it: torch.save's bytes (the runtime reads
    them with torch::jit::pickle_load). Any mix of bool, int, float, str, None, tensors, lists and
    dicts with str keys."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def decode_option(data: bytes) -> Any:
    """The value encode_option wrote."""
    return torch.load(io.BytesIO(data), weights_only=True)


def _is_symbolic(value: Any) -> bool:
    """Whether a node's recorded value is a tensor with a symbolic size (torch.export's
    dynamic_shapes: the runtime may then call with other sizes)."""
    return isinstance(value, torch.Tensor) and any(isinstance(size, torch.SymInt) for size in value.shape)


def _size_hint(size: Any) -> int:
    """A recorded size as a number: itself, or for a symbolic size the value it had in the
    example torch.export traced with."""
    if isinstance(size, torch.SymInt):
        hint = size.node.hint
        if hint is None:  # a size only known at run time (data-dependent): no example to trace with
            raise ValueError(f"tbk.executorch: size {size} is known only at run time (data-dependent); "
                             "a tbk backend lowers a subgraph at the sizes of an example")
        return int(hint)
    return int(size)


def _example(value: Any) -> Any:
    """A real tensor of a node's recorded (fake) value: its shape (symbolic sizes at the export's
    example) and dtype, random contents."""
    if isinstance(value, torch.Tensor):
        shape = tuple(_size_hint(size) for size in value.shape)
        if value.dtype.is_floating_point:
            return torch.randn(shape, dtype=value.dtype)
        return torch.zeros(shape, dtype=value.dtype)
    return value


def _preprocess(backend: str, program: torch.export.ExportedProgram,
                compile_specs: List[CompileSpec]) -> PreprocessResult:
    signature = program.graph_signature
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    recorded = [placeholders[name].meta["val"] for name in signature.user_inputs]
    examples = tuple(_example(value) for value in recorded)
    # an exported program with dynamic shapes is called at other sizes than the example's: the
    # backend is not told the shapes are static (tbk_onednn then keeps what it needs for others)
    static_shapes = not any(_is_symbolic(value) for value in recorded)
    options = {spec.key: decode_option(spec.value) for spec in compile_specs}
    # without the input checks: they read the recorded (fake) values, which tracing cannot; the
    # traced subgraph takes the recorded shapes anyway
    module = program.module(check_guards=False)
    module._forward_pre_hooks.clear()
    traced = _trace(module, examples)
    _torchscript_spelling(traced.graph)
    processed = _C.executorch_processed(traced._c, backend, options, examples, static_shapes,
                                        len(signature.user_inputs), len(signature.user_outputs))
    return PreprocessResult(processed_bytes=processed)


def _trace(function: Any, examples: tuple) -> Any:
    """torch.jit.trace without its notices: tracing is how tbk reaches TorchScript here (its
    deprecation), and the Edge module's input checks become constants (TracerWarning), as they
    should for one subgraph of fixed shapes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace(_method)?` is deprecated")
        return torch.jit.trace(function, examples, check_trace=False, strict=False)


# Edge operators as TorchScript spells them (what tbk.partition and tbk.lower give a backend):
# each (pattern, replacement) is a graph rewrite applied to every traced graph a backend sees. The
# rest of Edge's core ATen operators (aten::addmm, aten::relu, aten::mean.dim, ...) are spelled the
# same in TorchScript.
_TORCHSCRIPT_SPELLINGS = [
    ("""graph(%x, %w, %b, %s, %p, %d, %t, %o, %g):
          %y = aten::convolution(%x, %w, %b, %s, %p, %d, %t, %o, %g)
          return (%y)""",
     """graph(%x, %w, %b, %s, %p, %d, %t, %o, %g):
          %no : bool = prim::Constant[value=0]()
          %yes : bool = prim::Constant[value=1]()
          %y = aten::_convolution(%x, %w, %b, %s, %p, %d, %t, %o, %g, %no, %no, %yes, %yes)
          return (%y)"""),
    ("""graph(%x, %w, %b, %mean, %var, %momentum, %eps):
          %y, %saved_mean, %saved_invstd = aten::_native_batch_norm_legit_no_training(%x, %w, %b, %mean, %var, %momentum, %eps)
          return (%y)""",
     """graph(%x, %w, %b, %mean, %var, %momentum, %eps):
          %no : bool = prim::Constant[value=0]()
          %yes : bool = prim::Constant[value=1]()
          %y = aten::batch_norm(%x, %w, %b, %mean, %var, %no, %momentum, %eps, %yes)
          return (%y)"""),
    ("""graph(%x, %k, %s, %p, %d, %c):
          %y, %indices = aten::max_pool2d_with_indices(%x, %k, %s, %p, %d, %c)
          return (%y)""",
     """graph(%x, %k, %s, %p, %d, %c):
          %y = aten::max_pool2d(%x, %k, %s, %p, %d, %c)
          return (%y)"""),
    ("""graph(%x, %shape, %w, %b, %eps):
          %y, %mean, %rstd = aten::native_layer_norm(%x, %shape, %w, %b, %eps)
          return (%y)""",
     """graph(%x, %shape, %w, %b, %eps):
          %no : bool = prim::Constant[value=0]()
          %y = aten::layer_norm(%x, %shape, %w, %b, %eps, %no)
          return (%y)"""),
    ("""graph(%x, %size):
          %y = aten::_adaptive_avg_pool2d(%x, %size)
          return (%y)""",
     """graph(%x, %size):
          %y = aten::adaptive_avg_pool2d(%x, %size)
          return (%y)"""),
    ("""graph(%x, %dim, %half):
          %y = aten::_softmax(%x, %dim, %half)
          return (%y)""",
     """graph(%x, %dim, %half):
          %none : NoneType = prim::Constant()
          %y = aten::softmax(%x, %dim, %none)
          return (%y)"""),
] + [
    # Edge's copying forms of the view operators, taking the same arguments
    (f"""graph({args}):
          %y = aten::{view}_copy({args})
          return (%y)""",
     f"""graph({args}):
          %y = aten::{view}({args})
          return (%y)""")
    for view, args in (("view", "%x, %size"), ("permute", "%x, %dims"), ("unsqueeze", "%x, %dim"),
                       ("transpose", "%x, %a, %b"), ("expand", "%x, %size, %implicit"),
                       ("slice", "%x, %dim, %start, %end, %step"), ("select", "%x, %dim, %index"),
                       ("split_with_sizes", "%x, %sizes, %dim"))
]


def _int_list(value: torch._C.Value) -> Optional[List[int]]:
    """A traced graph's constant int list (a prim::ListConstruct of constants), or None."""
    known = value.toIValue()
    if known is None and value.node().kind() == "prim::ListConstruct":
        known = [item.toIValue() for item in value.node().inputs()]
    return known if isinstance(known, list) and all(isinstance(k, int) for k in known) else None


# ExecuTorch's dim orders of the channels-last formats as TorchScript's memory formats
# (c10::MemoryFormat's order, as ints), as ExecuTorch's get_dim_order (exir/dim_order_utils.py)
# writes them; 0, 1, ..., n - 1 is contiguous_format (0); None keeps the input's order, as
# preserve_format does.
_MEMORY_FORMATS = {(0, 2, 3, 1): 2, (0, 2, 3, 4, 1): 3}  # channels_last, channels_last_3d


def _clone_as_aten(graph: torch._C.Graph) -> None:
    """Edge's dim_order_ops::_clone_dim_order(x, non_blocking, dim_order), what export makes of an
    eval-mode dropout or x.clone(), becomes aten::clone(x, memory_format), in place: dim_order None
    as None (preserve), 0, 1, ..., n - 1 as torch.contiguous_format, channels_last's order as
    torch.channels_last (which a backend may refuse by name); another order stays."""
    for node in list(graph.findAllNodes("dim_order_ops::_clone_dim_order")):
        x, _, dim_order = list(node.inputs())
        if dim_order.toIValue() is None and dim_order.node().kind() == "prim::Constant":
            memory_format = None
        else:
            order = _int_list(dim_order)
            if order is None:
                continue
            memory_format = 0 if order == list(range(len(order))) else _MEMORY_FORMATS.get(tuple(order))
            if memory_format is None:
                continue
        with graph.insert_point_guard(node):
            clone = graph.insertNode(graph.create("aten::clone", [x, graph.insertConstant(memory_format)], 1))
        clone.output().setType(node.output().type())
        clone.copyMetadata(node)
        node.output().replaceAllUsesWith(clone.output())
        node.destroy()


def _torchscript_spelling(graph: torch._C.Graph) -> None:
    """Rewrites `graph`'s Edge operators to their TorchScript spelling (in place)."""
    for pattern, replacement in _TORCHSCRIPT_SPELLINGS:
        torch._C._jit_pass_custom_pattern_based_rewrite_graph(pattern, replacement, graph)
    _clone_as_aten(graph)


_details: Dict[str, type] = {}


def backend_details(backend: str) -> type:
    """The BackendDetails subclass ExecuTorch lowers with for `backend`: ExecuTorch finds it by
    class name, so its name is the backend's (a Python identifier), and it is made once."""
    if backend not in _details:
        if not backend.isidentifier():
            raise ValueError(f"tbk.executorch: backend name {backend!r} is not a Python identifier; "
                             "ExecuTorch names a backend by its BackendDetails class")

        def preprocess(program, compile_specs):
            return _preprocess(backend, program, compile_specs)

        _details[backend] = type(backend, (BackendDetails,), {
            "preprocess": staticmethod(preprocess),
            "__doc__": f"tbk backend {backend}: its C++ preprocess, through tbk.executorch",
        })
    return _details[backend]


class _Input:
    """Where a traced node reads the traced function's input `index`."""

    def __init__(self, index: int):
        self.index = index


class _Supports(OperatorSupportBase):
    """Asks the backend's supports hook about each Edge node, through its TorchScript
    counterpart: the node alone, traced with its recorded inputs (weights as constants)."""

    def __init__(self, backend: str, program: torch.export.ExportedProgram):
        self.backend = backend
        self.program = program
        self.refusals: Dict[str, str] = {}
        self.answers: Dict[str, bool] = {}
        self.constants: Dict[str, Any] = {}  # node name -> its value, for nodes of weights only

    def _constant(self, node: torch.fx.Node) -> Optional[torch.Tensor]:
        """A stand-in for a weight, or for a node computed from weights only (permute_copy of a
        weight, as Edge writes a linear layer): the backend sees it as a constant; None else."""
        if node.name in self.constants:
            return self.constants[node.name]
        value = None
        if node.op == "placeholder":
            for get in (get_param, get_buffer, get_lifted_tensor_constant):
                value = get(self.program, node) if value is None else value
            # ExecuTorch partitions a program of fake tensors: a real one of the same shape and
            # dtype stands in (supports decides on constness, shapes and dtypes, not values)
            value = _example(value) if value is not None else None
        elif node.op == "call_function" and node.all_input_nodes and \
                all(self._constant(a) is not None for a in node.all_input_nodes):
            operator = getattr(node.target, "_op", node.target)
            read = lambda a: self._constant(a) if isinstance(a, torch.fx.Node) else a  # noqa: E731
            value = operator(*torch.fx.node.map_aggregate(node.args, read),
                             **torch.fx.node.map_aggregate(node.kwargs, read))
        self.constants[node.name] = value
        return value

    def is_node_supported(self, submodules: Mapping[str, torch.nn.Module], node: torch.fx.Node) -> bool:
        if node.name not in self.answers:
            self.answers[node.name] = self._answer(node)
        return self.answers[node.name]

    def _answer(self, node: torch.fx.Node) -> bool:
        if node.op != "call_function":
            return False
        if node.target is _getitem:  # an element of a node's tuple result goes with that node
            source = node.args[0]
            return isinstance(source, torch.fx.Node) and self.is_node_supported({}, source)
        if self._constant(node) is not None:  # computed from weights: it goes with its readers
            return bool(node.users) and all(self.is_node_supported({}, user) for user in node.users)
        if isinstance(node.meta.get("val"), (torch.SymInt, torch.SymFloat, torch.SymBool)):
            self.refusals[node.name] = ("its result is a size computed at run time (torch.export's dynamic "
                                        "shapes), not a tensor: ExecuTorch computes it")
            return False
        inputs = []  # the node's tensor arguments that are not constants: the traced function's

        def argument(a):
            if isinstance(a, torch.fx.Node):
                constant = self._constant(a)
                if constant is not None:
                    return constant
                inputs.append(_example(a.meta.get("val")))
                return _Input(len(inputs) - 1)
            return a

        try:
            args = torch.fx.node.map_aggregate(node.args, argument)
            kwargs = torch.fx.node.map_aggregate(node.kwargs, argument)
        except ValueError as error:  # a size known only at run time: no example to ask with
            self.refusals[node.name] = str(error)
            return False
        if any(isinstance(i, (torch.SymInt, torch.SymFloat, torch.SymBool)) for i in inputs):
            self.refusals[node.name] = ("an argument is a size computed at run time (torch.export's dynamic "
                                        "shapes); a tbk backend takes tensors and constants")
            return False
        if any(not isinstance(i, torch.Tensor) for i in inputs):
            self.refusals[node.name] = "an input that is not a tensor"
            return False
        operator = getattr(node.target, "_op", node.target)  # an Edge operator's ATen overload

        # of a tuple result, the elements the graph reads (max_pool2d_with_indices: the values)
        used = sorted({user.args[1] for user in node.users if user.target is _getitem})

        def call(*given):
            bind = lambda a: given[a.index] if isinstance(a, _Input) else a  # noqa: E731
            result = operator(*torch.fx.node.map_aggregate(args, bind),
                              **torch.fx.node.map_aggregate(kwargs, bind))
            return tuple(result[i] for i in used) if isinstance(result, (tuple, list)) else result
        try:
            graph = _trace(call, tuple(inputs)).graph
        except Exception as error:  # the node cannot be traced alone: it stays in ExecuTorch
            self.refusals[node.name] = f"cannot be traced to TorchScript alone: {error}"
            return False
        torch._C._jit_pass_inline(graph)
        _torchscript_spelling(graph)
        torch._C._jit_pass_constant_propagation(graph)  # constant lists, as frozen graphs have
        nodes = [n for n in graph.nodes() if n.kind() not in ("prim::Constant", "prim::ListConstruct",
                                                               "prim::TupleConstruct")]
        if not nodes:
            self.refusals[node.name] = "no TorchScript node"
            return False
        for n in nodes:
            refusal = _C.supports_refusal(self.backend, n)
            if refusal:
                self.refusals[node.name] = refusal
                return False
        return True


class TbkPartitioner(Partitioner):
    """Tags the Edge nodes a tbk backend runs: every compute node for a backend without a
    supports hook (it lowers whole methods), else the connected groups of nodes its hook
    supports. `refusals` (node name -> the backend's reason) is filled by partition."""

    def __init__(self, backend: str, spec: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.backend = backend
        self.has_supports = _C.has_supports(backend)  # raises, naming it, when it is not registered
        backend_details(backend)
        self.refusals: Dict[str, str] = {}
        self.delegation_spec = DelegationSpec(
            backend, [CompileSpec(key, encode_option(value)) for key, value in (spec or {}).items()])

    def _whole(self, program) -> List[List[torch.fx.Node]]:
        nodes = [n for n in program.graph_module.graph.nodes if n.op == "call_function"]
        return [nodes] if nodes else []

    def partition(self, program: torch.export.ExportedProgram) -> PartitionResult:
        graph_module = program.graph_module
        if self.has_supports:
            support = _Supports(self.backend, program)
            groups = [list(p.nodes) for p in CapabilityBasedPartitioner(
                graph_module, support, allows_single_node_partition=True).propose_partitions()]
            # a group of weight computations alone stays in ExecuTorch
            groups = [g for g in groups if any(support.constants.get(n.name) is None for n in g)]
            self.refusals = support.refusals
        else:
            groups = self._whole(program)
        tags: Dict[str, DelegationSpec] = {}
        for k, group in enumerate(groups):
            tag = f"tbk_{self.backend}_{k}"
            tags[tag] = self.delegation_spec
            for node in group:
                node.meta["delegation_tag"] = tag
                for arg in node.all_input_nodes:  # weights go with the subgraph that reads them
                    if arg.op == "placeholder" and (is_param(program, arg) or is_buffer(program, arg) or
                                                    is_lifted_tensor_constant(program, arg)):
                        arg.meta["delegation_tag"] = tag
        return PartitionResult(tagged_exported_program=program, partition_tags=tags)


def partitioner(backend: str, spec: Optional[Dict[str, Any]] = None) -> TbkPartitioner:
    """The ExecuTorch partitioner for tbk backend `backend` (registered in this process, e.g. by
    torch.ops.load_library of its library). spec: the compile-spec options every delegated
    subgraph gets, {name: value} as tbk.lower's per-method options."""
    return TbkPartitioner(backend, spec)


def executorch_version() -> str:
    """The executorch package's release (1.5.1)."""
    try:
        from executorch.version import __version__
        return __version__
    except ImportError:
        return "unknown"
