// register_onednn.cpp: registers the oneDNN backend as "tbk_onednn" when loaded: for TorchScript,
// and, when built with ExecuTorch, for ExecuTorch programs (.pte) too.
#include <tbk/register.hpp>

#include "onednn_backend.hpp"
TBK_REGISTER_BACKEND(onednn_backend, "tbk_onednn");

#ifdef TBK_ONEDNN_FOR_EXECUTORCH  // backends/onednn/meson.build sets it when ExecuTorch is found
#include <tbk/executorch.hpp>
TBK_REGISTER_EXECUTORCH_BACKEND(onednn_backend, "tbk_onednn");
#endif
