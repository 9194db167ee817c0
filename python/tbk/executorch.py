"""tbk.executorch: lowering to a tbk backend in ExecuTorch programs (.pte), from the backend's own
C++ preprocess and supports hook, the ones tbk.lower and tbk.partition use.

    import torch, tbk.executorch
    from executorch.exir import to_edge_transform_and_lower
    torch.ops.load_library("libcustom_backend.so")  # registers it for TorchScript and ExecuTorch
    program = to_edge_transform_and_lower(
        torch.export.export(model, inputs),
        partitioner=[tbk.executorch.partitioner("custom_backend")]).to_executorch()
    open("model.pte", "wb").write(program.buffer)

The supports hook is asked about each Edge node in the TorchScript view of the whole graph, and each
delegated subgraph becomes the TorchScript module the backend's preprocess takes (tbk.bridge, which
tbk.export and tbk.compile share), lowered as method "forward" with example inputs of the shapes and
dtypes its nodes record. Needs the executorch package (executorch==1.5.1 beside torch 2.13);
the runtime side is the backend library's TBK_REGISTER_EXECUTORCH_BACKEND (tbk/executorch.hpp).
docs/executorch.md has the whole story.
"""
import io
from typing import Any, Dict, List, Optional

import torch
from executorch.exir.backend.backend_details import BackendDetails, PreprocessResult
from executorch.exir.backend.compile_spec_schema import CompileSpec
from executorch.exir.backend.partitioner import DelegationSpec, Partitioner, PartitionResult
from torch._export.utils import (get_buffer, get_lifted_tensor_constant, get_param, is_buffer,
                                 is_lifted_tensor_constant, is_param)

from . import _C, bridge

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


def _program_constants(program: torch.export.ExportedProgram) -> Dict[str, Any]:
    """An exported program's weights by placeholder name: parameters, buffers and lifted constants
    (real tensors, or stand-ins of their shapes and dtypes where ExecuTorch partitions a program of
    fake tensors: supports decides on constness, shapes and dtypes, not values)."""
    values = {}
    for node in program.graph.nodes:
        if node.op != "placeholder":
            continue
        value = None
        for get in (get_param, get_buffer, get_lifted_tensor_constant):
            value = get(program, node) if value is None else value
        if isinstance(value, torch.Tensor):
            fake = isinstance(value, torch._subclasses.fake_tensor.FakeTensor)
            values[node.name] = bridge.example_of(value) if fake else value.detach()
    return values


def _preprocess(backend: str, program: torch.export.ExportedProgram,
                compile_specs: List[CompileSpec]) -> PreprocessResult:
    """One delegated subgraph through the backend's C++ preprocess: its TorchScript module
    (tbk.bridge.region_module: the weights constants, Edge's operators spelled as TorchScript
    spells them), inputs and outputs in the delegate call's order."""
    signature = program.graph_signature
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    inputs = [placeholders[name] for name in signature.user_inputs]
    output_node = next(node for node in program.graph.nodes if node.op == "output")
    outputs = [value for value in torch.fx.node.map_aggregate(output_node.args[0], lambda v: v)
               if isinstance(value, torch.fx.Node)] if isinstance(output_node.args[0], (tuple, list)) \
        else [output_node.args[0]]
    constants = bridge.Constants(_program_constants(program))
    nodes = [node for node in program.graph.nodes if node.op == "call_function"]
    module, _, _ = bridge.region_module(nodes, constants, inputs, outputs)
    recorded = [node.meta["val"] for node in inputs]
    processed = _processed(backend, module, recorded, {spec.key: decode_option(spec.value) for spec in compile_specs},
                           len(signature.user_outputs))
    return PreprocessResult(processed_bytes=processed)


def _processed(backend: str, module: Any, recorded: List[Any], options: Dict[str, Any], outputs: int) -> bytes:
    """The processed bytes of one region's module: its example inputs from the recorded (fake)
    values; a program exported with dynamic shapes is called at other sizes than the example's,
    so the backend is not told the shapes are static (tbk_onednn then keeps what it needs)."""
    examples = tuple(bridge.example_of(value) for value in recorded)
    static_shapes = not any(bridge.is_symbolic(value) for value in recorded)
    if not static_shapes:  # which dimensions change, so that the backend need not guess
        options = dict(options, **{_C.DYNAMIC_DIMS_OPTION: bridge.dynamic_dims(recorded)})
    return _C.processed_region(module, backend, options, examples, static_shapes, len(recorded), outputs,
                               f"tbk.executorch({backend})")


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


class TbkPartitioner(Partitioner):
    """Tags the Edge nodes a tbk backend runs: every compute node for a backend without a supports
    hook (it lowers whole methods), else the connected groups of nodes its hook claims, each asked
    in the TorchScript view of the whole graph (tbk.bridge), and each group lowered once to check
    that the backend takes it: a node its preprocess refuses stays in ExecuTorch with the reason.
    `refusals` (Edge node name -> the backend's reason) is filled by partition; a partition that
    delegates nothing warns with the first reasons. ops_to_not_decompose keeps the operators the
    hook claims as the author wrote them (aten::linear, not permute_copy + addmm)."""

    def __init__(self, backend: str, spec: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.backend = backend
        self.has_supports = _C.has_supports(backend)  # raises, naming it, when it is not registered
        backend_details(backend)
        self.options = dict(spec or {})
        self._filters: Dict[str, Any] = {}  # graph text -> ops_to_not_decompose's answer
        self.refusals: Dict[str, str] = {}
        self.delegation_spec = DelegationSpec(
            backend, [CompileSpec(key, encode_option(value)) for key, value in self.options.items()])

    def ops_to_not_decompose(self, program: torch.export.ExportedProgram):
        if not self.has_supports:  # whole methods: the core ATen operators, as export decomposes them
            return [], None
        # the regions lowered once: an operator kept whole must be one the backend then takes
        # (ExecuTorch asks several times about the same graph: the answer is kept by its text)
        key = str(program.graph)
        if key not in self._filters:
            self._filters[key] = bridge.decomposition_filter(
                self.backend, program.graph, bridge.Constants(_program_constants(program)), lower=self._trial)
        return self._filters[key]

    def _trial(self, k, module, nodes, inputs, outputs) -> bytes:
        """One region through the backend's preprocess (the processed bytes), as ExecuTorch will lower it."""
        return _processed(self.backend, module, [n.meta.get("val") for n in inputs], self.options, len(outputs))

    def partition(self, program: torch.export.ExportedProgram) -> PartitionResult:
        constants = bridge.Constants(_program_constants(program))

        found, support = bridge.regions(self.backend, program.graph, constants, self._trial)
        self.refusals = support.refusals
        operators = [n for n in program.graph.nodes if n.op == "call_function" and not constants.is_constant(n)]
        bridge.warn_if_nothing(f"tbk.executorch.partitioner({self.backend!r})", len(found), self.refusals, len(operators))
        tags: Dict[str, DelegationSpec] = {}
        for k, region in enumerate(found):
            tag = f"tbk_{self.backend}_{k}"
            tags[tag] = self.delegation_spec
            for node in region.nodes:
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
