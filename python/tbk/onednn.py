"""tbk.onednn: registers tbk_onednn, the oneDNN backend (backends/onednn), in this process.

    import torch, tbk, tbk.onednn
    lowered = tbk.lower(torch.jit.script(model), "tbk_onednn", {"forward": {}}, example_inputs=(x,))

The library, libtbk_onednn.so, is built and installed beside this module when oneDNN 2.x
(libdnnl-dev) was there at build time.
"""
import os

import torch

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libtbk_onednn.so")

if not os.path.exists(LIBRARY):
    raise ImportError(f"tbk.onednn: this build of tbk has no oneDNN backend ({LIBRARY} is missing; "
                      "build tbk with libdnnl-dev installed)")
torch.ops.load_library(LIBRARY)
