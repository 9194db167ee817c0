"""tbk.compile: a tbk backend under torch.compile. Every tbk backend registered in the process is a
torch.compile backend of the same name (registered when tbk is imported, and by
tbk.load_library / tbk.compile.register for libraries loaded later; import tbk.onednn registers
tbk_onednn):

    import torch, tbk, tbk.onednn
    compiled = torch.compile(model.eval(), backend="tbk_onednn")
    with torch.no_grad():
        y = compiled(x)
    # options, as tbk.lower's per-method options, and where the rest runs:
    compiled = torch.compile(model, backend=tbk.compile.backend("tbk_onednn", {"dynamic_shapes": False},
                                                                  rest="eager"))

For each graph Dynamo captures, the backend sees it as torch.export sees a module (tbk.bridge:
its ATen operators as the author wrote them, aten::linear, aten::conv2d ...), with the weights
frozen as constants: the regions it supports run in it (tbk.pt2: one tbk::call_region call each),
and the rest in Inductor (rest="inductor", the default) or eagerly (rest="eager"). Inference
only: a graph that needs autograd (grad enabled and an input that requires grad) goes to Inductor
whole, with a warning. The weights are read when a graph is compiled; a call with a weight
changed since (another tensor, or one written in place: its version counter moved) lowers the
graph again, with a warning, rather than use stale weights.
"""
import copy
import operator
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.fx

from . import _C, pt2

__all__ = ["backend", "register", "register_all", "REST"]

REST = ("inductor", "eager")


def _is_weight(source: Any) -> bool:
    """Whether Dynamo read a graph input from a module's parameters or buffers."""
    from torch._dynamo.source import is_from_unspecialized_param_buffer_source
    return source is not None and is_from_unspecialized_param_buffer_source(source)


class _Inputs:
    """How Dynamo's graph inputs map to the frozen graph's: weights (frozen), Python numbers Dynamo
    passes as 0-dim tensors (torch.compile(dynamic=True) does so for floats such as a batch norm's
    eps: frozen as numbers), sizes of other inputs (recomputed from them), and the rest (passed on)."""

    def __init__(self, gm: torch.fx.GraphModule, example_inputs: Sequence[Any]):
        self.placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self.weights: Dict[int, torch.Tensor] = {}
        self.numbers: Dict[int, torch.Tensor] = {}
        self.sizes: Dict[int, tuple] = {}  # input index -> (tensor input index, dimension)
        self.passed: List[int] = []
        graphargs = [n.meta.get("grapharg") for n in self.placeholders]
        sources = [getattr(g, "source", None) for g in graphargs]
        for i, (source, value) in enumerate(zip(sources, example_inputs)):
            if isinstance(value, torch.Tensor) and _is_weight(source):
                self.weights[i] = value
            elif isinstance(value, torch.Tensor) and getattr(graphargs[i], "pass_arg_as_tensor", False):
                self.numbers[i] = value
            elif isinstance(value, torch.SymInt) and self._size_of(source, sources) is not None:
                self.sizes[i] = self._size_of(source, sources)
            else:
                self.passed.append(i)

    @staticmethod
    def _size_of(source: Any, sources: Sequence[Any]) -> Optional[tuple]:
        from torch._dynamo.source import TensorProperty, TensorPropertySource
        if isinstance(source, TensorPropertySource) and source.prop is TensorProperty.SIZE and source.base in sources:
            return sources.index(source.base), source.idx
        return None


def _frozen(gm: torch.fx.GraphModule, inputs: _Inputs) -> torch.fx.GraphModule:
    """Dynamo's graph with its weights as attributes (get_attr) and each size input computed from
    its tensor (aten.sym_size), taking only the inputs in `inputs.passed`."""
    root = torch.nn.Module()
    graph = torch.fx.Graph()
    env: Dict[torch.fx.Node, torch.fx.Node] = {}
    for i, node in enumerate(inputs.placeholders):
        if i in inputs.weights:
            name = f"w{i}"
            root.register_buffer(name, inputs.weights[i].detach(), persistent=False)
            env[node] = graph.get_attr(name)
        elif i not in inputs.sizes and i not in inputs.numbers:
            env[node] = graph.placeholder(node.name)
            env[node].meta = dict(node.meta)
    for i, (tensor, dim) in inputs.sizes.items():
        env[inputs.placeholders[i]] = graph.call_function(torch.ops.aten.sym_size.int,
                                                          (env[inputs.placeholders[tensor]], dim))
    for i, number in inputs.numbers.items():
        value = number.item()
        node = inputs.placeholders[i]
        for user in list(node.users):  # x.item() of a number passed as a tensor: the number itself
            if user.op == "call_method" and user.target == "item":
                env[user] = value
        env[node] = graph.call_function(torch.scalar_tensor, (value,), {"dtype": number.dtype})
    for node in gm.graph.nodes:
        if node in env:
            continue
        if node.op == "get_attr":
            value = getattr(gm, node.target)
            name = node.target.replace(".", "_")
            if isinstance(value, torch.Tensor):
                root.register_buffer(name, value.detach(), persistent=False)
            else:
                setattr(root, name, value)
            env[node] = graph.get_attr(name)
        elif node.op != "placeholder":
            env[node] = graph.node_copy(node, lambda a: env[a])
    for name, module in gm.named_children():  # call_module nodes (Dynamo's graph rarely has them)
        root.add_module(name, module)
    return torch.fx.GraphModule(root, graph)


def _export(frozen: torch.fx.GraphModule, inputs: _Inputs, gm: torch.fx.GraphModule,
            example_inputs: Sequence[Any]) -> torch.export.ExportedProgram:
    """The frozen graph through torch.export (its operators as the author wrote them), functional,
    with a dynamic dimension wherever Dynamo's graph has a symbolic size."""
    args, dims = [], []
    for i in inputs.passed:
        value = example_inputs[i]
        recorded = inputs.placeholders[i].meta.get("example_value")
        if isinstance(value, torch.Tensor):
            args.append(value.detach().clone())
            symbolic = {d: torch.export.Dim.AUTO for d, s in enumerate(getattr(recorded, "shape", ()))
                        if isinstance(s, torch.SymInt)}
            dims.append(symbolic or None)
        else:
            args.append(int(value) if isinstance(value, torch.SymInt) else value)
            dims.append(torch.export.Dim.AUTO if isinstance(value, torch.SymInt) else None)
    # outside Dynamo's tracing context: export traces with its own fake mode and shape environment
    with torch._guards.tracing(None), torch._subclasses.fake_tensor.unset_fake_temporarily(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        exported = torch.export.export(frozen, tuple(args), dynamic_shapes=tuple(dims) if any(dims) else None,
                                       strict=False)
        return exported.run_decompositions({})


def _positional(module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """`module` (an ExportedProgram's .module(), delegated) as a graph module that takes its
    inputs as they come and returns its outputs' tuple: without the pytree flattening and the input
    checks of .module() (its `_guards_fn` call among them: about 60 us a call together), which
    Dynamo's guards make redundant here (Dynamo calls it with exactly the flat inputs it recorded,
    their sizes guarded by the same code's trace)."""
    graph = copy.deepcopy(module.graph)
    graph._codegen = torch.fx.graph.CodeGen()
    for node in [n for n in graph.nodes if n.op == "call_module" and n.target == "_guards_fn"]:
        graph.erase_node(node)
    return torch.fx.GraphModule(module, graph)


def _only_regions(module: torch.fx.GraphModule) -> bool:
    """Whether every operation of `module` is a region's call or the taking of one of its outputs:
    then Inductor has nothing to compile, and calling it would only add its wrapper (about 0.1 ms)."""
    return all(n.target in (torch.ops.tbk.call_region.default, operator.getitem)
               for n in module.graph.nodes if n.op not in ("placeholder", "get_attr", "output"))


def _needs_autograd(example_inputs: Sequence[Any]) -> bool:
    return torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs)


class _Compiled:
    """What the backend returns for one graph: the call with Dynamo's inputs, its weights checked
    against those it was lowered with, the rest of the graph in Inductor or eagerly."""

    def __init__(self, name: str, options: Dict[str, Any], rest: str, gm: torch.fx.GraphModule,
                 example_inputs: Sequence[Any], supports: Optional[Callable], min_nodes: int):
        self.name, self.options, self.rest = name, options, rest
        self.gm, self.example_inputs = gm, list(example_inputs)
        self.supports, self.min_nodes = supports, min_nodes
        self._lower(self.example_inputs)

    def _lower(self, example_inputs: Sequence[Any]) -> None:
        self.inputs = _Inputs(self.gm, example_inputs)
        self.weight_indices = sorted(self.inputs.weights)
        self.number_indices = sorted(self.inputs.numbers)
        self.versions = self._versions(example_inputs)
        exported = _export(_frozen(self.gm, self.inputs), self.inputs, self.gm, example_inputs)
        # the graph module whose regions call the backend (graph_module) and what runs it
        delegated, self.report = pt2.delegate(exported.module(), self.name, self.options, supports=self.supports,
                                              min_nodes=self.min_nodes, where=f"torch.compile(backend={self.name!r})")
        self.graph_module = _positional(delegated)
        compiles_rest = self.rest == "inductor" and not _only_regions(self.graph_module)
        # the graph's own forward when nothing compiles it: no nn.Module call wrapper (hooks) per call
        self.run = torch.compile(self.graph_module, backend="inductor") if compiles_rest else self.graph_module.forward

    def _versions(self, args: Sequence[Any]) -> Any:
        return (_C.tensor_versions([args[i] for i in self.weight_indices]),
                _C.tensor_values([args[i] for i in self.number_indices]))

    def __call__(self, *args: Any) -> Any:
        if self._versions(args) != self.versions:
            warnings.warn(f"torch.compile(backend={self.name!r}): a weight changed since the graph was lowered "
                          "(another tensor, or written in place); lowering it again with the new weights")
            self._lower(list(args))
        result = self.run(*[args[i] for i in self.inputs.passed])
        return result


def backend(name: str, options: Optional[Dict[str, Any]] = None, *, rest: str = "inductor",
            supports: Optional[Callable[[Any], Any]] = None, min_nodes: int = 1) -> Callable:
    """The torch.compile backend of tbk backend `name` (registered in this process), as a callable
    for torch.compile(model, backend=...). options: the backend's options for every region (as
    tbk.lower's per-method options; torch.compile(..., options=...) passes them too). rest: where the
    nodes the backend does not run go, "inductor" (with freezing's view of the weights: they are
    constants) or "eager". supports, min_nodes: as tbk.export.lower's."""
    if rest not in REST:
        raise ValueError(f"tbk.compile.backend: rest must be one of {REST}, got {rest!r}")
    if not isinstance(name, str) or name not in _C.registered_backends():
        raise ValueError(f"tbk.compile.backend: backend {name!r} is not registered through tbk in this process "
                         f"(registered: {', '.join(_C.registered_backends()) or 'none'}); load its library first")
    fixed = dict(options or {})

    def compile_graph(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: Optional[Dict[str, Any]] = None):
        if _needs_autograd(example_inputs):
            warnings.warn(f"torch.compile(backend={name!r}): the graph needs autograd (grad is enabled and an input "
                          "requires grad); tbk backends run inference, so Inductor compiles it. Call the model under "
                          "torch.no_grad() or torch.inference_mode() to use the backend", stacklevel=2)
            from torch._inductor.compile_fx import compile_fx
            return compile_fx(gm, example_inputs)
        merged = dict(fixed)
        merged.update(options or {})
        return _Compiled(name, merged, rest, gm, example_inputs, supports, min_nodes)
    compile_graph.__name__ = name
    return compile_graph


def register(name: str) -> None:
    """Makes tbk backend `name` (registered in this process) a torch.compile backend of the same
    name; nothing when it is one already."""
    from torch._dynamo.backends.registry import _COMPILER_FNS, register_backend
    if name not in _COMPILER_FNS:
        register_backend(backend(name), name=name)


def register_all() -> None:
    """Every tbk backend registered in this process as a torch.compile backend of its name."""
    for name in _C.registered_backends():
        register(name)


def tbk_onednn(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], **kwargs: Any) -> Any:
    """The torch_dynamo_backends entry point of an installed tbk (pyproject.toml): torch.compile(
    model, backend="tbk_onednn") without an import. Loads tbk_onednn's library (import
    tbk.onednn) on the first graph, then compiles as tbk.compile.backend("tbk_onednn") does."""
    import tbk.onednn  # noqa: F401  (its register() finds the name taken by this entry point: kept)
    return backend("tbk_onednn")(gm, example_inputs, **kwargs)
