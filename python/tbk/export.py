"""tbk.export: a tbk backend in torch.export programs. The regions of an ExportedProgram that the
backend supports run in it, each as one call of tbk::call_region on a tbk.Region object that
holds what the backend's preprocess made; the result is an ordinary ExportedProgram that
torch.export.save writes to a .pt2 and torch.export.load reads back in any process that has the
backend's library loaded, without running preprocess again.

    import torch, tbk.export, tbk.onednn
    program = torch.export.export(model.eval(), (x,))
    lowered = tbk.export.lower(program, "tbk_onednn")
    tbk.export.save(lowered, "model.pt2")          # torch.export.save, plus the backends it needs
    # elsewhere, after loading the backend's library:
    model = tbk.export.load("model.pt2").module()  # names a backend the process lacks
"""
import os
import zipfile
from typing import Any, Callable, Dict, List, Optional

import torch

from . import _C, pt2

__all__ = ["lower", "report", "save", "load", "backends_of"]

_BACKENDS_FILE = "tbk_backends"  # the extra file of a .pt2 that lists the tbk backends it needs


def _dynamic_shapes(program: torch.export.ExportedProgram) -> Any:
    """The program's dynamic dimensions, for exporting it again: Dim.AUTO where a user input's size
    is symbolic (export finds the ranges again), in the structure of its example inputs."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    dims = []
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val")
        if isinstance(value, torch.Tensor):
            symbolic = {d: torch.export.Dim.AUTO for d, s in enumerate(value.shape) if isinstance(s, torch.SymInt)}
            dims.append(symbolic or None)
        else:
            dims.append(None)
    if not any(dims):
        return None
    args, kwargs = program.example_inputs
    if kwargs:
        raise ValueError("tbk.export.lower: a program with keyword inputs and dynamic shapes is not supported; "
                         "export it with positional inputs")
    return tuple(dims)


def lower(program: torch.export.ExportedProgram, backend: str, options: Optional[Dict[str, Any]] = None, *,
          supports: Optional[Callable[[Any], Any]] = None, min_nodes: int = 1) -> torch.export.ExportedProgram:
    """An ExportedProgram whose regions that `backend` supports run in the backend (the input is not
    changed). `program`: from torch.export.export of a module in eval mode (its operators as the
    author wrote them: aten.linear, aten.conv2d ...; call run_decompositions after lowering, not
    before, or the backend sees the decomposed operators). options: the backend's options for every
    region (as tbk.lower's per-method options). supports: a Python override of the backend's supports
    hook (a torch._C.Node -> True, False or tbk.unsupported(reason)). min_nodes: smaller regions stay
    outside. Dynamic shapes carry over (each dynamic dimension as torch.export.Dim.AUTO). Warns when
    nothing is delegated; tbk.export.report(result) says where each node went."""
    if not isinstance(program, torch.export.ExportedProgram):
        raise TypeError(f"tbk.export.lower: expected a torch.export.ExportedProgram, got {type(program).__name__}; "
                        "export the module first with torch.export.export(module, example_inputs)")
    # functional first (in-place operators such as relu_ as their functional forms, as tbk.partition
    # removes tensor mutation), with nothing decomposed
    gm = program.run_decompositions({}).module()
    gm, found = pt2.delegate(gm, backend, options, supports=supports, min_nodes=min_nodes,
                             where=f"tbk.export.lower({backend!r})")
    args, kwargs = program.example_inputs
    lowered = torch.export.export(gm, args, kwargs, dynamic_shapes=_dynamic_shapes(program), strict=False)
    _reports[id(lowered)] = found
    return lowered


_reports: Dict[int, pt2.Report] = {}


def report(program: torch.export.ExportedProgram) -> str:
    """Where each node went when tbk.export.lower made `program` (its regions, and the backend's
    reason for each node left outside); for a loaded program, its regions."""
    found = _reports.get(id(program))
    if found is not None:
        return str(found)
    regions = [n for n in program.graph.nodes if n.op == "call_function" and n.target is pt2.call_region()]
    return f"{len(regions)} tbk region call{'s' if len(regions) != 1 else ''}: " + \
        ", ".join(n.name for n in regions)


def backends_of(program: torch.export.ExportedProgram) -> List[str]:
    """The tbk backends a program's regions run in."""
    names = []
    for value in program.constants.values():
        if isinstance(value, torch.ScriptObject) and value._type().qualified_name() == "__torch__.torch.classes.tbk.Region":
            name = value.backend()
            if name not in names:
                names.append(name)
    return names


def save(program: torch.export.ExportedProgram, path: str, **kwargs: Any) -> None:
    """torch.export.save, with the names of the tbk backends the program needs kept beside it (so that
    tbk.export.load can name the ones a process lacks)."""
    extra = dict(kwargs.pop("extra_files", None) or {})
    extra[_BACKENDS_FILE] = "\n".join(backends_of(program))
    torch.export.save(program, path, extra_files=extra, **kwargs)


def load(path: str, **kwargs: Any) -> torch.export.ExportedProgram:
    """torch.export.load, after checking that every tbk backend the program needs (as tbk.export.save
    wrote down) is registered in this process; the error names the missing ones and what is
    registered, as tbk.load does."""
    needed = _needed_backends(path)
    registered = set(_C.registered_backends())
    missing = [name for name in needed if name not in registered]
    if missing:
        raise RuntimeError(
            f"tbk.export.load({os.fspath(path)!r}): the program runs regions in backend"
            f"{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}, not registered in this "
            f"process (registered through tbk: {', '.join(sorted(registered)) or 'none'}); load the backend's "
            "library first: torch.ops.load_library(path), or import tbk.onednn for tbk_onednn")
    if needed:
        pt2.register_fakes()
    return torch.export.load(path, **kwargs)


def _needed_backends(path: Any) -> List[str]:
    if not isinstance(path, (str, os.PathLike)) or not zipfile.is_zipfile(path):
        return []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(f"extra/{_BACKENDS_FILE}") or name.endswith(f"/{_BACKENDS_FILE}"):
                return [line for line in archive.read(name).decode().splitlines() if line]
    return []
