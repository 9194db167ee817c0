"""setup.py: my_backend, a tbk backend built as a torch C++ extension. From this directory, with
torch and tbk installed in the Python that runs pip:

    python3 -m pip install --no-build-isolation .
    python3 -c "import torch, tbk, my_backend; print(tbk.registered_backends())"

tbk.get_include() gives tbk's headers, tbk.cpp_extension.cflags() the C++ standard and torch
version they need, and with executorch=None ExecuTorch's runtime where this Python has executorch
(the backend then registers for .pte programs too); torch's BuildExtension adds torch's own
headers and libraries."""
import tbk
import tbk.cpp_extension
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

setup(
    packages=["my_backend"],
    ext_modules=[CppExtension("my_backend._backend", ["my_backend/register_my_backend.cpp"],
                              include_dirs=[tbk.get_include()],
                              extra_compile_args=tbk.cpp_extension.cflags(executorch=None),
                              extra_link_args=tbk.cpp_extension.ldflags(executorch=None))],
    cmdclass={"build_ext": BuildExtension},
)
