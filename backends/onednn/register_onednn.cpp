// register_onednn.cpp: registers the oneDNN backend as "tbk_onednn" when loaded: for TorchScript,
// and, when built with ExecuTorch, for ExecuTorch programs (.pte) too.
#include <tbk/register.hpp>

#include "onednn_backend.hpp"
TBK_REGISTER_BACKEND(onednn_backend, "tbk_onednn");

#include <torch/library.h>  // TORCH_LIBRARY_FRAGMENT

// The quantized weights of PT2E-quantized layers, as preprocess keeps them through freezing
// (operators/quantize.hpp): with side effects (CONSERVATIVE), so that constant folding leaves them.
TORCH_LIBRARY_FRAGMENT(tbk_onednn, m) {
  m.def(torch::schema("tbk_onednn::quantized_weight(Tensor values, Tensor scales) -> Tensor",
                      c10::AliasAnalysisKind::CONSERVATIVE),
        &tbk_onednn::operators::quantize::dequantized_weight);
}

#ifdef TBK_ONEDNN_FOR_EXECUTORCH  // backends/onednn/meson.build sets it when ExecuTorch is found
#include <tbk/executorch.hpp>
TBK_REGISTER_EXECUTORCH_BACKEND(onednn_backend, "tbk_onednn");
#endif
