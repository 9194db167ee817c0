#!/usr/bin/env python3
"""draw_partition.py: draws docs/partitioning-before.png and docs/partitioning-after.png, the
graph of docs/snippets/partition_from_python.py's model before and after tbk.partition, from a
real run. Usage (needs graphviz's dot): tools/draw_partition.py BUILD_DIR

Runs the snippet as the docs test does (from a directory where build/ is BUILD_DIR, with
PYTHONPATH=BUILD_DIR/python) and draws each graph's nodes (constants and attribute reads left
out) with an arrow for each value one node passes to another.
"""
import os
import re
import runpy
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNIPPET = os.path.join(ROOT, "docs", "snippets", "partition_from_python.py")


def dot_of(graph, title, regions, supported=()):
    """Graphviz source for `graph`; `regions` maps a region attribute name to its label; nodes of
    the `supported` kinds are shaded (what the backend's supports hook accepts)."""
    import torch  # noqa: F401 (the graph objects come from torch._C)
    lines = [f'digraph "{title}" {{', '  rankdir=TB; node [shape=box, style="rounded,filled", '
             'fillcolor=white, fontname="Helvetica"]; edge [color="#555555"];',
             f'  labelloc=t; label="{title}"; fontname="Helvetica";']
    ids, producer = {}, {}
    lines.append('  in [label="inputs", shape=ellipse, fillcolor="#eeeeee"];')
    for value in list(graph.inputs())[1:]:
        producer[value.debugName()] = "in"
    attribute_of = {}
    for node in graph.nodes():
        kind = node.kind()
        if kind == "prim::Constant":
            continue
        if kind == "prim::GetAttr":
            attribute_of[node.output().debugName()] = node.s("name")
            continue
        name = f"n{len(ids)}"
        ids[node] = name
        label, fill = kind, "#fbd9a6" if kind in supported else "white"
        if kind == "prim::CallMethod":
            target = attribute_of.get(list(node.inputs())[0].debugName(), "")
            label, fill = regions.get(target, target), "#f5a742"
        lines.append(f'  {name} [label="{label}", fillcolor="{fill}"];')
        for value in node.inputs():
            source = producer.get(value.debugName())
            if source is not None:
                lines.append(f"  {source} -> {name};")
        for value in node.outputs():
            producer[value.debugName()] = name
    lines.append('  out [label="outputs", shape=ellipse, fillcolor="#eeeeee"];')
    for value in graph.outputs():
        if value.debugName() in producer:
            lines.append(f"  {producer[value.debugName()]} -> out;")
    lines.append("}")
    return "\n".join(lines)


def main() -> int:
    build = os.path.abspath(sys.argv[1])
    sys.path.insert(0, os.path.join(build, "python"))
    import torch
    import tbk
    with tempfile.TemporaryDirectory() as where:
        os.symlink(build, os.path.join(where, "build"))
        os.chdir(where)
        result = runpy.run_path(SNIPPET, run_name="__main__")
    scripted, partitioned = result["scripted"], result["partitioned"]
    before = scripted.forward.graph.copy()
    torch._C._jit_pass_inline(before)
    regions = {}
    for line in tbk.report(partitioned).splitlines():
        m = re.match(r"\s+region (\d+) \((\S+)\).*: (\d+ nodes? \[[^\]]*\])", line)
        if m:
            regions[m.group(2)] = f"region {m.group(1)}: add_sub_graph\\n{m.group(3)}"
    # add_sub_graph's supports hook takes aten::add and aten::sub (of tensors and constants).
    supported = ("aten::add", "aten::sub")
    for which, graph, title in (("before", before, "scripted (shaded: what add_sub_graph supports)"),
                                ("after", partitioned.forward.graph, "tbk.partition(scripted, 'add_sub_graph')")):
        png = os.path.join(ROOT, "docs", f"partitioning-{which}.png")
        subprocess.run(["dot", "-Tpng", "-Gdpi=80", "-o", png], input=dot_of(graph, title, regions, supported),
                       text=True, check=True)
        print("wrote", png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
