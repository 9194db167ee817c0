// register_pt2_proof.cpp: libkit_proof_pt2, the backends of broken_backends.hpp that the Python
// kit's legs (tbk.testing: torch.export, torch.compile, ExecuTorch) are proven against by
// check_pt2_kit.py: a sound one for partitioned models, a sound one for whole methods, and ones
// that compute wrong results, lose their state when a program is loaded elsewhere, or claim
// nothing of any graph.
#include "broken_backends.hpp"

TBK_REGISTER_BACKEND(add_sub_graph_backend, "sound_graph");
TBK_REGISTER_BACKEND(sound_backend, "sound");
TBK_REGISTER_BACKEND(wrong_result_backend, "wrong_result");
TBK_REGISTER_BACKEND(loses_state_backend, "loses_state");
TBK_REGISTER_BACKEND(claims_nothing_backend, "claims_nothing");

#ifdef TBK_KIT_PROOF_EXECUTORCH  // tests/meson.build sets it when ExecuTorch is found
#include <tbk/executorch.hpp>
TBK_REGISTER_EXECUTORCH_BACKEND(add_sub_graph_backend, "sound_graph");
TBK_REGISTER_EXECUTORCH_BACKEND(sound_backend, "sound");
TBK_REGISTER_EXECUTORCH_BACKEND(wrong_result_backend, "wrong_result");
TBK_REGISTER_EXECUTORCH_BACKEND(loses_state_backend, "loses_state");
TBK_REGISTER_EXECUTORCH_BACKEND(claims_nothing_backend, "claims_nothing");
#endif
