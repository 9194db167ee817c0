"""my_backend: importing it registers the tbk backend "clamp_backend" (for tbk.lower, and for
torch.compile(model, backend="clamp_backend") on torch 2)."""
import glob
import os

import tbk

_LIBRARY = glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_backend*.so"))
if not _LIBRARY:
    raise ImportError(f"my_backend: its library (_backend*.so) is not beside {__file__}; "
                      "install the project with pip install --no-build-isolation .")
tbk.load_library(_LIBRARY[0])
