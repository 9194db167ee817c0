"""tbk.onednn: registers tbk_onednn, the oneDNN backend (backends/onednn), in this process.

    import torch, tbk, tbk.onednn
    lowered = tbk.lower(torch.jit.script(model), "tbk_onednn", {"forward": {}}, example_inputs=(x,))

The libraries are built and installed beside this module when oneDNN 2.x (libdnnl-dev) was
there at build time: libtbk_onednn.so, which loads oneDNN isolated from the one inside pip's
torch, then the backend, libtbk_onednn_backend.so, which registers tbk_onednn.
"""
import os

import torch

import tbk

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libtbk_onednn.so")

if not os.path.exists(LIBRARY):
    raise ImportError(f"tbk.onednn: this build of tbk has no oneDNN backend ({LIBRARY} is missing; "
                      "build tbk with libdnnl-dev installed)")
torch.ops.load_library(LIBRARY)
if "tbk_onednn" not in tbk.registered_backends():
    raise ImportError("tbk.onednn: libtbk_onednn.so loaded, but tbk_onednn did not register (the warning "
                      "printed above says why)")
if tbk._torch_compile_available():  # torch.compile(model, backend="tbk_onednn")
    from tbk import compile as _compile
    _compile.register("tbk_onednn")
