// register_add_sub.cpp: registers the add/sub backend as "custom_backend" when loaded: for
// TorchScript, and, when built with ExecuTorch, for ExecuTorch programs (.pte) too.
#include "add_sub.hpp"
TBK_REGISTER_BACKEND(add_sub_backend, "custom_backend");

#ifdef TBK_WITH_EXECUTORCH  // ExecuTorch's runtime is in the build (tbk's executorch_dep defines it)
#include <tbk/executorch.hpp>
TBK_REGISTER_EXECUTORCH_BACKEND(add_sub_backend, "custom_backend");
#endif
