#!/usr/bin/env bash
# run_consumers.sh SOURCE_ROOT WHICH: builds and runs one consumer of torch-backend-kit in a
# temporary directory. WHICH is meson-subproject, pkg-config or cmake; the last two first
# install torch-backend-kit into a temporary prefix with `meson install`.
set -euo pipefail
root=$1 which=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/tests/consumer" "$work/consumer"

install_tbk() {
  meson setup "$work/build-install" "$root" --prefix="$work/prefix" -Dtests=disabled \
    -Dexamples=disabled > "$work/install.log"
  meson install -C "$work/build-install" >> "$work/install.log"
  echo "installed into $work/prefix:"; (cd "$work/prefix" && find . -name '*.pc' -o -name '*Config*.cmake' -o -name tbk.hpp)
}

case "$which" in
  meson-subproject)
    # The getting-started project (docs/getting-started.md): built, run from C++ and Python.
    project="$work/consumer/src"
    ln -s "$root" "$project/subprojects/torch-backend-kit"
    meson setup "$project/build" "$project" > "$work/setup.log"
    meson compile -C "$project/build"
    (cd "$project" && build/consumer)
    "$project/build/consumer_tests"
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
      (cd "$project" && /usr/bin/python3 "$work/consumer/python/use_from_python.py")
    else
      echo "no /usr/bin/python3 with torch: the Python step was not run"; exit 1
    fi ;;
  pkg-config)
    install_tbk
    export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/$(gcc -dumpmachine)/pkgconfig"
    echo "pkg-config --cflags torch-backend-kit: $(pkg-config --cflags torch-backend-kit)"
    c++ -std=c++17 $(pkg-config --cflags torch-backend-kit) -o "$work/consumer-bin" \
      "$work/consumer/src/main.cpp" "$work/consumer/src/register_scale.cpp" \
      -ltorch -ltorch_cpu -lc10
    (cd "$work" && "$work/consumer-bin") ;;
  cmake)
    install_tbk
    cmake -S "$work/consumer/cmake" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release > "$work/cmake.log"
    cmake --build "$work/build"
    (cd "$work" && "$work/build/consumer") ;;
  *) echo "unknown consumer '$which'" >&2; exit 2 ;;
esac
