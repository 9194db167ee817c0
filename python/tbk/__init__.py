"""tbk: torch-backend-kit from Python.

Lower scripted modules to backends registered through tbk (whole methods, or only the
operators a backend supports), read where each node went, and load models with tbk's
diagnostics. Backends are C++ libraries: load yours first with torch.ops.load_library(path).

    import torch, tbk
    torch.ops.load_library("libadd_sub_graph.so")
    scripted = torch.jit.script(model)
    partitioned = tbk.partition(scripted, "add_sub_graph")
    print(tbk.report(partitioned))
"""
import os
import re
import warnings
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

import torch

from . import _build


def _check_torch_version() -> None:
    """tbk._C and the backends' libraries use torch's C++ ABI, which changes between releases:
    another torch than the one tbk was built for is refused here, by name, not left to crash."""
    running = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    if running != _build.TORCH_VERSION:
        raise ImportError(f"tbk was built for torch {_build.TORCH_VERSION}, but this Python imports torch "
                          f"{torch.__version__} (from {os.path.dirname(torch.__file__)}); build tbk again against "
                          "this torch (pip install --no-build-isolation --force-reinstall <tbk's source>)")


_check_torch_version()

from . import _C  # noqa: E402  (after the torch check)

__all__ = ["lower", "partition", "report", "load", "registered_backends", "unsupported", "Unsupported",
           "load_library", "get_include", "get_cmake_dir", "get_pkgconfig_dir"]


def _installed(inside: str, elsewhere: str, marker: str, what: str, function: str) -> str:
    """The directory `inside` the package (pip install .) if it holds `marker`, else `elsewhere`
    (meson install's) if that does."""
    for path in (os.path.join(os.path.dirname(os.path.abspath(__file__)), inside), elsewhere):
        if path and os.path.isfile(os.path.join(path, marker)):
            return path
    raise FileNotFoundError(f"{function}: this tbk has no {what} installed beside it (it runs from a build tree); "
                            "install tbk (pip install --no-build-isolation <tbk's source>, or meson install)")


def get_include() -> str:
    """The directory that holds tbk's headers (#include <tbk/tbk.hpp>): tbk/include inside the
    installed package (pip install .), meson install's include directory, or, from a build tree,
    the source tree's include/. Code that includes them needs torch's headers too and the C++
    standard in tbk._build.CXX_STD (tbk.cpp_extension.load passes both)."""
    try:
        return _installed("include", _build.INSTALLED_INCLUDE, os.path.join("tbk", "tbk.hpp"), "headers",
                          "tbk.get_include")
    except FileNotFoundError:
        if os.path.isdir(_build.SOURCE_INCLUDE):
            return _build.SOURCE_INCLUDE
        raise


def get_cmake_dir() -> str:
    """The directory of tbk's CMake package (torch-backend-kitConfig.cmake, target tbk::tbk):
    pass it as -Dtorch-backend-kit_DIR=... (find_package(Torch) must find the same torch). Raises
    FileNotFoundError from a build tree."""
    return _installed(os.path.join("lib", "cmake", "torch-backend-kit"), _build.INSTALLED_CMAKE,
                      "torch-backend-kitConfig.cmake", "CMake package", "tbk.get_cmake_dir")


def get_pkgconfig_dir() -> str:
    """The directory of tbk's pkg-config file (torch-backend-kit.pc: --cflags, and the variables
    torch_cflags, torch_libs, cxx_std): put it on PKG_CONFIG_PATH. Raises FileNotFoundError from a
    build tree."""
    return _installed(os.path.join("lib", "pkgconfig"), _build.INSTALLED_PKGCONFIG, "torch-backend-kit.pc",
                      "pkg-config file", "tbk.get_pkgconfig_dir")

_PATHS = ("native", "fast")


def _script_module(module: Any, function: str) -> torch.jit.ScriptModule:
    if not isinstance(module, torch.jit.ScriptModule):
        raise TypeError(
            f"{function}: expected a torch.jit.ScriptModule, got {type(module).__name__}; "
            "script it first with torch.jit.script(module)")
    return module


def _wrap(cpp_module: Any) -> torch.jit.ScriptModule:
    return torch.jit._recursive.wrap_cpp_module(cpp_module)


def _check_path(path: str, function: str) -> None:
    if path not in _PATHS:
        raise ValueError(f'{function}: path must be "native" or "fast", got {path!r}')


class Unsupported:
    """What a supports override returns for a node the backend does not run, with the reason
    tbk.report shows (tbk.unsupported("why") makes one)."""

    def __init__(self, reason: str):
        self.reason = str(reason)

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"tbk.unsupported({self.reason!r})"


def unsupported(reason: str) -> Unsupported:
    """The answer of a supports override for a node the backend does not run, and why: the
    report says "not supported by the backend: <reason>"."""
    return Unsupported(reason)


def _support_answers(supports: Any, function: str):
    """A supports override as _C.partition calls it: node -> (supported, reason)."""
    if not callable(supports):
        raise TypeError(f"{function}: supports must be None or a callable taking a torch._C.Node and "
                        f"returning True, False or tbk.unsupported(reason), got {type(supports).__name__}")

    def answer(node: Any) -> Tuple[bool, str]:
        result = supports(node)
        if isinstance(result, Unsupported):
            return False, result.reason
        if isinstance(result, bool):
            return result, ""
        raise TypeError(f"{function}: supports returned {type(result).__name__} for {node.kind()}; "
                        "return True, False or tbk.unsupported(reason)")
    return answer


def _examples_by_method(example_inputs: Any, methods: Sequence[str],
                        function: str) -> Dict[str, Tuple[Any, ...]]:
    """example_inputs as {method: tuple}: a tuple (or a single tensor) is for forward when it
    is named, else for the only method; a dict names the methods."""
    if example_inputs is None:
        return {}
    if isinstance(example_inputs, dict):
        return {str(k): tuple(v) if isinstance(v, (tuple, list)) else (v,)
                for k, v in example_inputs.items()}
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if "forward" in methods:
        return {"forward": inputs}
    if len(methods) == 1:
        return {methods[0]: inputs}
    raise ValueError(
        f"{function}: example_inputs is a tuple, but the methods are {list(methods)}; give a "
        "dict {method: inputs}")


def lower(module: torch.jit.ScriptModule, backend: str, spec: Dict[str, Dict[str, Any]], *,
          path: str = "native", example_inputs: Any = None) -> torch.jit.ScriptModule:
    """Lowers the methods named in `spec` to `backend`.

    spec: {method: {option: value}}, options of any mix of types (bool, int, float, str, None,
    tensors, and lists, tuples and dicts of those). path: "native" (PyTorch's code generation,
    what torch._C._jit_to_backend makes) or "fast" (tbk's typed calls). example_inputs: the
    inputs of forward (or {method: inputs}), given to the backend as the option
    "example_inputs" of each method, for backends that need shapes. Parameter defaults and
    keyword arguments of the lowered methods are kept.
    """
    _script_module(module, "tbk.lower")
    _check_path(path, "tbk.lower")
    if not isinstance(spec, dict):
        raise TypeError(f"tbk.lower: spec must be a dict {{method: {{option: value}}}}, got "
                        f"{type(spec).__name__}")
    spec = {method: dict(options) if isinstance(options, dict) else options
            for method, options in spec.items()}
    for method, inputs in _examples_by_method(example_inputs, list(spec), "tbk.lower").items():
        if method not in spec:
            raise ValueError(f"tbk.lower: example inputs are given for method {method!r}, "
                             f"which the spec does not name (it names {list(spec)})")
        if isinstance(spec[method], dict):
            spec[method][_C.EXAMPLE_INPUTS_OPTION] = list(inputs)
    return _wrap(_C.lower(module._c, backend, spec, path))


def partition(module: torch.jit.ScriptModule, backend: str,
              spec: Optional[Dict[str, Dict[str, Any]]] = None, *, example_inputs: Any = None,
              min_nodes: int = 1, max_regions: Optional[int] = None,
              methods: Iterable[str] = ("forward",), path: str = "native",
              freeze: bool = False, inside_blocks: bool = True,
              supports: Any = None) -> torch.jit.ScriptModule:
    """Runs each maximal, connected region of nodes that `backend` supports in the backend,
    and the rest in TorchScript; returns the partitioned module (the input is not changed).

    spec: {method: {option: value}}, given to every region cut from that method.
    example_inputs: the inputs of forward (or {method: inputs}); each region outside control
    flow then gets its own inputs as the option "example_inputs". min_nodes: smaller regions
    stay in TorchScript. max_regions: per method, the largest are kept. freeze: freeze the
    module first, so that parameters are constants of their regions (the module must be in
    eval mode, as for torch.jit.freeze). inside_blocks: partition
    the bodies of if and for too. supports: a callable taking a torch._C.Node and returning
    True, False or tbk.unsupported(reason), asked instead of the backend's own supports hook
    (for a backend registered without one, or to run fewer nodes in it). tbk.report(result)
    says where each node went, with the reasons.
    """
    _script_module(module, "tbk.partition")
    _check_path(path, "tbk.partition")
    if isinstance(methods, str):
        methods = (methods,)
    methods = list(methods)
    if not isinstance(min_nodes, int) or isinstance(min_nodes, bool) or min_nodes < 1:
        raise ValueError(f"tbk.partition: min_nodes must be an int of at least 1, got {min_nodes!r}")
    if max_regions is not None and (not isinstance(max_regions, int) or isinstance(max_regions, bool)
                                    or max_regions < 1):
        raise ValueError(f"tbk.partition: max_regions must be None or an int of at least 1, got "
                         f"{max_regions!r}")
    if spec is not None and not isinstance(spec, dict):
        raise TypeError(f"tbk.partition: spec must be None or a dict {{method: {{option: value}}}}, "
                        f"got {type(spec).__name__}")
    examples = _examples_by_method(example_inputs, methods, "tbk.partition")
    answers = None if supports is None else _support_answers(supports, "tbk.partition")
    result = _wrap(_C.partition(module._c, backend, spec or {}, methods, min_nodes, max_regions or 0,
                                inside_blocks, freeze, path, examples, answers))
    if not freeze:
        _warn_if_weights_were_wanted(backend, _C.report(result._c))
    return result


def _warn_if_weights_were_wanted(backend: str, report: str) -> None:
    """One warning when partitioning made no region and every reason the backend gave is about
    constants (its weights are attributes until the module is frozen)."""
    if " 0 regions" not in report or re.search(r": [1-9][0-9]* regions?,", report):
        return
    reasons = [line for line in report.splitlines() if "not supported by the backend" in line]
    if reasons and all("constant" in line for line in reasons):
        warnings.warn(f"tbk.partition({backend!r}): no region was made, and every reason the backend gave is about "
                      "constants: its weights are module attributes until the module is frozen; partition with "
                      "freeze=True (the module in eval mode)", stacklevel=3)


def report(module: torch.jit.ScriptModule) -> str:
    """The placement report of a module made by tbk.partition (also after save and load)."""
    _script_module(module, "tbk.report")
    return _C.report(module._c)


def load(path: str) -> torch.jit.ScriptModule:
    """torch.jit.load, after checking that every backend the model uses is registered; the error
    names the missing ones and what is registered."""
    return _wrap(_C.load(str(path)))


def registered_backends() -> Tuple[str, ...]:
    """The backends registered through tbk in this process, in registration order."""
    return tuple(_C.registered_backends())


def _torch_compile_available() -> bool:
    """torch.compile and torch.export exist (torch 2); tbk.compile and tbk.export serve them."""
    return int(torch.__version__.split(".")[0]) >= 2


def load_library(path: str) -> None:
    """torch.ops.load_library(path), then every tbk backend the library registered becomes a
    torch.compile backend of its name (torch 2), as those registered before `import tbk` did."""
    torch.ops.load_library(path)
    if _torch_compile_available():
        from . import compile as _compile
        _compile.register_all()


if _torch_compile_available():
    try:
        from . import compile as _compile
    except ImportError:  # a build of tbk without its torch.compile side
        pass
    else:
        _compile.register_all()
