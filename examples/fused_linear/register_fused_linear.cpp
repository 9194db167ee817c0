// register_fused_linear.cpp: registers the fused linear backend as "fused_linear" when loaded, for
// TorchScript and PT2, and for ExecuTorch where its meson.build found it.
#include <tbk/register.hpp>

#include "fused_linear.hpp"
TBK_REGISTER_BACKEND(fused_linear_backend, "fused_linear");

#ifdef TBK_WITH_EXECUTORCH  // ExecuTorch's runtime is in the build (tbk's executorch_dep defines it)
#include <tbk/executorch.hpp>
TBK_REGISTER_EXECUTORCH_BACKEND(fused_linear_backend, "fused_linear");
#endif
