#!/usr/bin/env bash
# run_consumers.sh SOURCE_ROOT WHICH TORCH PYTHON: builds and runs one consumer of
# torch-backend-kit in a temporary directory, against torch stack TORCH (system or python, as
# tbk's -Dtorch option), with PYTHON that stack's Python. WHICH is meson-subproject, pkg-config,
# cmake, or mismatch (tbk installed for the other stack must be refused when configuring with
# CMake and when compiling with pkg-config's flags). All but meson-subproject first install
# torch-backend-kit into a temporary prefix with `meson install`.
set -euo pipefail
root=$1 which=$2 torch=$3 python=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/tests/consumer" "$work/consumer"

# The compiler and linker flags of a torch stack, for a build that uses neither Meson nor CMake.
torch_flags() {
  if [ "$1" = system ]; then
    echo "-isystem /usr/include/torch/csrc/api/include -ltorch -ltorch_cpu -lc10"
  else
    local paths include lib
    paths=$(python3 "$root/tools/torch_config.py")
    include=$(sed -n 2p <<< "$paths") lib=$(sed -n 3p <<< "$paths")
    echo "-isystem $include -isystem $include/torch/csrc/api/include -L$lib -Wl,-rpath,$lib -ltorch -ltorch_cpu -lc10"
  fi
}
torch_cmake_prefix() {
  if [ "$1" = python ]; then python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)'; fi
}
other_stack() { if [ "$1" = system ]; then echo python; else echo system; fi; }

install_tbk() {  # install_tbk STACK PREFIX
  meson setup "$work/build-install-$1" "$root" --prefix="$2" -Dtorch="$1" -Dtests=disabled \
    -Dexamples=disabled > "$work/install.log"
  meson install -C "$work/build-install-$1" >> "$work/install.log"
  echo "installed for torch stack '$1' into $2:"; (cd "$2" && find . -name '*.pc' -o -name '*Config*.cmake' -o -name tbk.hpp)
}
pc_path() { echo "$1/lib/pkgconfig:$1/lib/$(gcc -dumpmachine)/pkgconfig"; }

case "$which" in
  meson-subproject)
    # The getting-started project (docs/getting-started.md): built, run from C++ and Python.
    project="$work/consumer/src"
    ln -s "$root" "$project/subprojects/torch-backend-kit"
    meson setup "$project/build" "$project" -Dtorch-backend-kit:torch="$torch" \
      -Dtorch-backend-kit:python=enabled > "$work/setup.log"
    if grep -i warning "$work/setup.log"; then echo "meson setup printed warnings"; exit 1; fi
    meson compile -C "$project/build"
    (cd "$project" && build/consumer)
    "$project/build/consumer_tests"
    # Python warnings are errors here, but torch's deprecation notices (tests/meson.build).
    (cd "$project" && PYTHONWARNINGS=${TBK_PYTHONWARNINGS:-error} \
      PYTHONPATH=build/subprojects/torch-backend-kit/python "$python" \
      "$work/consumer/python/use_from_python.py") ;;
  pkg-config)
    install_tbk "$torch" "$work/prefix"
    export PKG_CONFIG_PATH=$(pc_path "$work/prefix")
    echo "pkg-config --cflags torch-backend-kit: $(pkg-config --cflags torch-backend-kit)"
    echo "pkg-config --variable=torch_version torch-backend-kit: $(pkg-config --variable=torch_version torch-backend-kit)"
    # shellcheck disable=SC2046
    # (the standard the installed torch needs: pkg-config's cxx_std, c++20 for torch 2.14)
    std=$(pkg-config --variable=cxx_std torch-backend-kit)
    c++ -std="$std" $(pkg-config --cflags torch-backend-kit) -o "$work/consumer-bin" \
      "$work/consumer/src/main.cpp" "$work/consumer/src/register_scale.cpp" $(torch_flags "$torch")
    (cd "$work" && "$work/consumer-bin")
    # A backend library built with the README's plain line (pkg-config's torch_cflags and
    # torch_libs carry the torch tbk was installed for), loaded and lowered to from Python below.
    # shellcheck disable=SC2046
    (cd "$work/consumer/src" &&
      g++ -std="$std" -shared -fPIC -o libconsumer_scale.so register_scale.cpp \
        $(pkg-config --cflags torch-backend-kit) $(pkg-config --variable=torch_cflags torch-backend-kit) \
        $(pkg-config --variable=torch_libs torch-backend-kit))
    # The Python package, installed with the headers: importable from the prefix.
    init=$(find "$work/prefix" -path '*/tbk/__init__.py' | head -n 1)
    if [ -z "$init" ]; then echo "meson install did not install the Python package tbk"; exit 1; fi
    cat > "$work/use_installed_tbk.py" <<'PY'
import torch, tbk
class M(torch.nn.Module):
    def forward(self, x):
        return x + 1
try:
    tbk.partition(torch.jit.script(M()), "not_registered")
    raise SystemExit("tbk.partition accepted a backend that is not registered")
except RuntimeError as e:
    assert "not registered in this process" in str(e), e
print("installed Python package:", tbk.__file__, "backends:", tbk.registered_backends())
import sys
torch.ops.load_library(sys.argv[1])  # built with the plain g++ line
assert "consumer_scale" in tbk.registered_backends(), tbk.registered_backends()
x = torch.randn(4)
scaled = tbk.lower(torch.jit.script(M()), "consumer_scale", {"forward": {"factor": 3.0}})
assert torch.equal(scaled(x), x * 3.0), (scaled(x), x)
print("consumer_scale from a g++-built library: forward(x) = 3 x")
import os
if os.path.exists(os.path.join(os.path.dirname(tbk.__file__), "libtbk_onednn.so")):
    import tbk.onednn  # the oneDNN backend, installed with the package when it was built
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    lowered = tbk.lower(torch.jit.script(net), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
    with torch.no_grad():
        assert torch.allclose(lowered(x), net(x), atol=1e-5)
    print("installed tbk.onednn: tbk_onednn runs")
PY
    PYTHONPATH=$(dirname "$(dirname "$init")") PYTHONWARNINGS=${TBK_PYTHONWARNINGS:-error} \
      "$python" "$work/use_installed_tbk.py" "$work/consumer/src/libconsumer_scale.so" ;;
  cmake)
    install_tbk "$torch" "$work/prefix"
    cmake -S "$work/consumer/cmake" -B "$work/build" \
      -DCMAKE_PREFIX_PATH="$work/prefix;$(torch_cmake_prefix "$torch")" \
      -DCMAKE_BUILD_TYPE=Release > "$work/cmake.log"
    cmake --build "$work/build"
    (cd "$work" && "$work/build/consumer") ;;
  mismatch)
    # tbk installed for this stack, used with the other one.
    other=$(other_stack "$torch")
    install_tbk "$torch" "$work/prefix"
    export PKG_CONFIG_PATH=$(pc_path "$work/prefix")
    # shellcheck disable=SC2046
    # (C++20: what either stack compiles with)
    if c++ -std=c++20 -fsyntax-only $(pkg-config --cflags torch-backend-kit) $(torch_flags "$other") \
        "$work/consumer/src/register_scale.cpp" 2> "$work/compile.log"; then
      echo "compiling against the other torch with pkg-config's flags should have failed"; exit 1
    fi
    grep -m1 "configured for another torch release" "$work/compile.log" \
      || { echo "the compiler did not say why:"; head -20 "$work/compile.log"; exit 1; }
    if cmake -S "$work/consumer/cmake" -B "$work/build" \
        -DCMAKE_PREFIX_PATH="$work/prefix;$(torch_cmake_prefix "$other")" > "$work/cmake.log" 2>&1; then
      echo "configuring against the other torch with CMake should have failed"; exit 1
    fi
    # (CMake wraps the message over lines: squeeze them into one)
    tr -s ' \n' ' ' < "$work/cmake.log" | grep -o "torch-backend-kit at [^ ]* was configured for torch [^ ]*[^:]*" \
      || { echo "CMake did not say why:"; cat "$work/cmake.log"; exit 1; } ;;
  *) echo "unknown consumer '$which'" >&2; exit 2 ;;
esac
