"""test_pip_install.py: tbk installed as Python users install things, in a fresh venv.

    test_pip_install.py SOURCE_ROOT

With the python3 that runs it (pip's torch), makes a venv that sees that Python's packages
(--system-site-packages: its torch, not a download of one), installs the build's tools in the
venv (meson-python, meson, ninja, wheel: in the venv only, so that the build trees keep their
Meson), then, in the venv:
- pip install --no-build-isolation SOURCE_ROOT: tbk, tbk._C, tbk.onednn and tbk.executorch import;
  tbk.get_include(), get_cmake_dir(), get_pkgconfig_dir() point inside the installed package and
  pkg-config reads the .pc there; torch.compile(model, backend="tbk_onednn") works in a fresh
  process without importing tbk (the torch_dynamo_backends entry point);
- import tbk under another torch version than it was built for fails with both versions named;
- tbk.cpp_extension.load builds the template's backend from its .cpp and loads it: tbk.lower,
  torch.compile and an ExecuTorch program (.pte, tbk.executorch, executorch.runtime) run it, its
  option errors name the backend and the method; and the add/sub
  example's partitioning backend (a supports hook): tbk.partition runs it;
- the template project (examples/backend_template: setuptools with torch's BuildExtension) is
  pip-installed, imported, lowered to, and run as a .pte.
Skipped (exit 77) without torch 2.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

SOURCE = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.getcwd()
import torch  # noqa: E402

if int(torch.__version__.split(".")[0]) < 2:
    print(f"skipped: the installed package is tested on torch 2 (this is {torch.__version__})")
    sys.exit(77)

# the venv's own tbk, not a build tree's; torch's notices ignored
ENV = dict({k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, PYTHONWARNINGS="ignore")


# Lowers the script's Clamp (clamp to `bound`) to an ExecuTorch program with `partitioner` and runs
# it with executorch.runtime: prints the delegate's backend and whether the results are clamp's.
# (A str.format template: the scripts' own braces are doubled.)
PTE_LEG = """
import tbk.executorch
from executorch.exir import to_edge_transform_and_lower
from executorch.runtime import Runtime
x = torch.randn(4, 5) * 10
program = to_edge_transform_and_lower(torch.export.export(Clamp(), (x,)),
                                      partitioner=[{partitioner}]).to_executorch()
print("delegated to", program.executorch_program.execution_plan[0].delegates[0].id)
pte = program.buffer  # kept alive while the runtime reads it
method = Runtime.get().load_program(pte).load_method("forward")
print("pte", torch.equal(method.execute([x])[0], torch.clamp(x, {bound})))
"""


class PipInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.venv = os.path.join(cls.dir.name, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", cls.venv], check=True)
        cls.python = os.path.join(cls.venv, "bin", "python")
        cls.pip(["meson-python", "meson", "ninja", "wheel", "setuptools"], from_index=True)
        cls.pip([SOURCE])

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    @classmethod
    def pip(cls, args, from_index=False):
        """pip install in the venv: the projects `args` built against what the venv has (no build
        isolation, no dependencies fetched), or, from_index, packages from the index."""
        flags = [] if from_index else ["--no-build-isolation", "--no-deps"]
        done = subprocess.run([cls.python, "-m", "pip", "install", *flags, *args],
                              capture_output=True, text=True, cwd=cls.dir.name, env=ENV)
        if done.returncode != 0:
            raise AssertionError(f"pip install {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def run_in_venv(self, script, check=True, then=""):
        """Runs `script` (dedented), then the code `then`, with the venv's Python from a file
        (torch.jit.script reads its source)."""
        path = os.path.join(self.dir.name, f"{self.id().rsplit('.', 1)[1]}.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(script) + then)
        done = subprocess.run([self.python, path], capture_output=True, text=True, cwd=self.dir.name, env=ENV)
        if check:
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        return done

    def test_the_package_its_headers_and_packages_are_installed(self):
        out = self.run_in_venv("""
            import os, tbk, tbk.onednn, tbk.executorch
            package = os.path.dirname(tbk.__file__)
            print(package)
            print(tbk.get_include())
            print(tbk.get_cmake_dir())
            print(tbk.get_pkgconfig_dir())
            print("tbk_onednn" in tbk.registered_backends())
        """).stdout.split()
        package = out[0]
        self.assertTrue(package.startswith(self.venv), package)
        self.assertEqual(out[1:4], [os.path.join(package, "include"),
                                    os.path.join(package, "lib", "cmake", "torch-backend-kit"),
                                    os.path.join(package, "lib", "pkgconfig")])
        self.assertTrue(os.path.isfile(os.path.join(out[1], "tbk", "tbk.hpp")))
        self.assertTrue(os.path.isfile(os.path.join(out[2], "torch-backend-kitConfig.cmake")))
        self.assertEqual(out[4], "True")
        cflags = subprocess.run(["pkg-config", "--cflags", "torch-backend-kit"], capture_output=True, text=True,
                                env=dict(os.environ, PKG_CONFIG_PATH=out[3]), check=True).stdout.split()
        self.assertEqual(os.path.realpath(cflags[0][2:]), os.path.realpath(out[1]))

    def test_torch_compile_finds_tbk_onednn_without_an_import(self):
        out = self.run_in_venv("""
            import sys, torch
            model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
            x = torch.randn(2, 8)
            with torch.no_grad():
                error = (torch.compile(model, backend="tbk_onednn")(x) - model(x)).abs().max().item()
            print(error, "tbk.onednn" in sys.modules)
        """).stdout.split()
        self.assertLessEqual(float(out[0]), 1e-5)
        self.assertEqual(out[1], "True")  # the entry point loaded it

    def test_another_torch_version_is_refused_by_name(self):
        done = self.run_in_venv("""
            import torch
            torch.__version__ = "9.9.0"  # as another torch installed after tbk
            import tbk
        """, check=False)
        self.assertNotEqual(done.returncode, 0)
        built_for = ".".join(torch.__version__.split(".")[:2])
        self.assertIn(f"ImportError: tbk was built for torch {built_for}, but this Python imports torch 9.9.0",
                      done.stderr)

    def test_a_backend_built_with_cpp_extension_load_lowers_and_compiles(self):
        source = os.path.join(SOURCE, "examples", "backend_template", "my_backend", "register_my_backend.cpp")
        out = self.run_in_venv(f"""
            import torch, tbk, tbk.cpp_extension
            tbk.cpp_extension.load("clamp_ext", [{source!r}], build_directory={self.dir.name!r})
            print("clamp_backend" in tbk.registered_backends())
            class Clamp(torch.nn.Module):
                def forward(self, x):
                    return torch.clamp(x, 0.0, 6.0)
            x = torch.randn(4, 5) * 10
            want = torch.clamp(x, 0.0, 6.0)
            lowered = tbk.lower(torch.jit.script(Clamp()), "clamp_backend", {{"forward": {{}}}})
            print(torch.equal(lowered(x), want))
            print(torch.equal(torch.compile(Clamp(), backend="clamp_backend")(x), want))
            try:
                tbk.lower(torch.jit.script(Clamp()), "clamp_backend", {{"forward": {{"min": 7.0}}}})
            except RuntimeError as e:
                print(str(e).splitlines()[0])
        """, then=PTE_LEG.format(partitioner='tbk.executorch.partitioner("clamp_backend")', bound="0.0, 6.0")
        ).stdout.splitlines()
        self.assertEqual(out[:3], ["True", "True", "True"])
        self.assertIn("clamp_backend", out[3])
        self.assertIn("forward", out[3])
        self.assertIn("option 'min' (7.000000) must not exceed 'max' (6.000000)", out[3])
        self.assertEqual(out[4:], ["delegated to clamp_backend", "pte True"])

    def test_a_backend_with_a_supports_hook_built_with_cpp_extension_load_partitions(self):
        source = os.path.join(SOURCE, "examples", "add_sub", "register_add_sub_graph.cpp")
        out = self.run_in_venv(f"""
            import torch, tbk, tbk.cpp_extension
            tbk.cpp_extension.load("add_sub_graph_ext", [{source!r}], build_directory={self.dir.name!r})
            class Mixed(torch.nn.Module):
                def forward(self, a, b):
                    return torch.relu(a + b), a - b
            a, b = torch.randn(5), torch.randn(5)
            partitioned = tbk.partition(torch.jit.script(Mixed()), "add_sub_graph")
            got, want = partitioned(a, b), Mixed()(a, b)
            print(all(torch.equal(g, w) for g, w in zip(got, want)))
            print(tbk.report(partitioned).splitlines()[0])
        """).stdout.splitlines()
        self.assertEqual(out[0], "True")
        self.assertIn("add_sub_graph", out[1])

    def test_the_template_project_installs_and_lowers(self):
        self.pip([os.path.join(SOURCE, "examples", "backend_template")])
        out = self.run_in_venv("""
            import torch, tbk, my_backend
            class Clamp(torch.nn.Module):
                def forward(self, x):
                    return torch.clamp(x, -1.0, 1.0)
            x = torch.randn(3, 7) * 3
            lowered = tbk.lower(torch.jit.script(Clamp()), "clamp_backend", {"forward": {"min": -1.0, "max": 1.0}})
            print(torch.equal(lowered(x), torch.clamp(x, -1.0, 1.0)))
        """, then=PTE_LEG.format(partitioner='tbk.executorch.partitioner("clamp_backend", {"min": -1.0, "max": 1.0})',
                                bound="-1.0, 1.0")).stdout.splitlines()
        self.assertEqual(out, ["True", "delegated to clamp_backend", "pte True"])


if __name__ == "__main__":
    unittest.main()
