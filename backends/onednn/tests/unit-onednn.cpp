// unit-onednn.cpp: the oneDNN backend (backends/onednn): the conformance kit; the networks of
// backends/onednn/models.py against their unlowered modules at batch 1 and 8, lowered whole and
// partitioned, saved and loaded (also by the lite interpreter); and every error a user or a
// hostile model file can cause. The program links libtbk_onednn.so as users do (which loads
// oneDNN isolated, then the backend) and reaches the backend through tbk and torch only.

#include "host_memory.hpp"  // tbk_onednn::detail::host_pool (no oneDNN)
#include "payload_checksums.hpp"  // tbk_onednn::add_checksums (zlib, no oneDNN)
#include "program.hpp"      // tbk_onednn::decode, encode: the payload format (no oneDNN)

#include <tbk/lower.hpp>
#include <tbk/partition.hpp>
#include <tbk/testing.hpp>  // TBK_TEST_BACKEND
#ifdef TBK_ONEDNN_TESTS_WITH_EXECUTORCH  // its meson.build sets it when ExecuTorch is found
#include <tbk/testing/executorch.hpp>  // TBK_TEST_EXECUTORCH_BACKEND
#endif

#include <torch/csrc/jit/mobile/import.h>  // torch::jit::_load_for_mobile
#include <torch/csrc/jit/mobile/module.h>  // torch::jit::mobile::Module

#include <cstdint>  // std::uintptr_t
#include <cstring>  // std::memset
#include <sstream>  // std::stringstream
#include <string>   // std::string
#include <vector>   // std::vector

#include "support.hpp"  // last: doctest's CHECK macros over glog's

using tbk_test::error_of;
using tbk_test::round_trip;

namespace {

// A network of models.py, scripted and saved by the build (TBK_ONEDNN_MODELS_DIR).
torch::jit::Module network(const std::string& name) {
  torch::jit::Module m = torch::jit::load(std::string(TBK_ONEDNN_MODELS_DIR) + "/" + name + ".pt");
  m.eval();
  return m;
}

// Its example input, repeated (with noise) to `batch` rows.
at::Tensor example(const std::string& name, int64_t batch = 1) {
  at::Tensor x = torch::jit::load(std::string(TBK_ONEDNN_MODELS_DIR) + "/" + name + ".input.pt").attr("x").toTensor();
  if (batch == 1) return x;
  return at::cat({x, at::randn({batch - 1, x.size(1), x.size(2), x.size(3)})});
}

tbk::spec_builder spec_for(const at::Tensor& x) {
  return tbk::spec().method("forward").example_inputs({x});
}

// The largest difference, relative to the largest magnitude of the reference.
double relative_error(const at::Tensor& got, const at::Tensor& want) {
  REQUIRE(got.sizes() == want.sizes());
  return (got - want).abs().max().item<double>() / std::max(want.abs().max().item<double>(), 1e-30);
}


}  // namespace

// The kit on the MLP: batch 64, so concurrent calls overlap for a while.
TBK_TEST_BACKEND("tbk_onednn")
    .module([] { return network("mlp"); })
    .spec(tbk::spec().method("forward").example_inputs({at::randn({64, 1, 28, 28})}))
    .inputs([] { return std::vector<c10::IValue>{at::randn({64, 1, 28, 28})}; })
    .tolerance(1e-4, 1e-5)
    .threads(4, 50)
    .memory(100, 40);

#ifdef TBK_ONEDNN_TESTS_WITH_EXECUTORCH
// The same kit through the ExecuTorch delegate libtbk_onednn_backend registers.
TBK_TEST_EXECUTORCH_BACKEND("tbk_onednn");
#endif

TEST_CASE("tbk_onednn runs the MLP, ResNet-style and MobileNetV2-style networks like TorchScript, at batch 1 and 8") {
  for (const char* name : {"mlp", "resnet", "mobilenet_v2"}) {
    for (int64_t batch : {1, 8}) {
      CAPTURE(name);
      CAPTURE(batch);
      torch::jit::Module m = network(name);
      const at::Tensor x = example(name, batch);
      const at::Tensor want = m.forward({x}).toTensor();
      for (tbk::lowering_path path : {tbk::lowering_path::native, tbk::lowering_path::fast}) {
        torch::jit::Module lowered = tbk::lower(m, "tbk_onednn", spec_for(x), path);
        CHECK(relative_error(lowered.forward({x}).toTensor(), want) <= 1e-4);
        // new inputs of the same shape: the compiled method is not tied to the example's values
        const at::Tensor y = at::randn_like(x);
        CHECK(relative_error(lowered.forward({y}).toTensor(), m.forward({y}).toTensor()) <= 1e-4);
      }
    }
  }
}

TEST_CASE("a network lowered to tbk_onednn saves, loads in C++ and runs in the lite interpreter") {
  torch::jit::Module m = network("mobilenet_v2");
  const at::Tensor x = example("mobilenet_v2");
  const at::Tensor want = m.forward({x}).toTensor();
  torch::jit::Module lowered = tbk::lower(m, "tbk_onednn", spec_for(x));
  CHECK(relative_error(round_trip(lowered).forward({x}).toTensor(), want) <= 1e-4);
  std::stringstream lite;
  lowered._save_for_mobile(lite);
  torch::jit::mobile::Module mobile = torch::jit::_load_for_mobile(lite);
  CHECK(relative_error(mobile.forward({x}).toTensor(), want) <= 1e-4);
}

TEST_CASE("whole-method lowering refuses an operator tbk_onednn cannot run, naming it and its line") {
  torch::jit::Module m = network("with_softplus");
  const std::string error = error_of([&] { tbk::lower(m, "tbk_onednn", spec_for(example("with_softplus"))); });
  CHECK_CONTAINS(error, "tbk_onednn");
  CHECK_CONTAINS(error, "method forward: tbk_onednn cannot run aten::softplus (");
  // the model was scripted and saved by models.py: its archive keeps the lines it was made from
  CHECK_CONTAINS(error, "models.py:");
  CHECK_CONTAINS(error, "tbk::partition");
}

TEST_CASE("partitioning gives tbk_onednn what it runs and leaves softplus in TorchScript, at batch 1 and 8") {
  for (int64_t batch : {1, 8}) {
    CAPTURE(batch);
    torch::jit::Module m = network("with_softplus");
    const at::Tensor x = example("with_softplus", batch);
    const at::Tensor want = m.forward({x}).toTensor();
    tbk::partition_options options;
    options.freeze = true;
    options.example_inputs["forward"] = {x};
    torch::jit::Module p = tbk::partition(m, "tbk_onednn", options);
    CHECK(relative_error(p.forward({x}).toTensor(), want) <= 1e-4);
    CHECK(relative_error(round_trip(p).forward({x}).toTensor(), want) <= 1e-4);
    const std::string report = tbk::report(p);
    CHECK_CONTAINS(report, "method forward: 2 regions");
    CHECK_CONTAINS(report, "aten::softplus");
    CHECK_CONTAINS(report, "not supported by the backend");
  }
}

TEST_CASE("tbk_onednn's errors name the backend, the method and what is wrong") {
  torch::jit::Module m = network("mlp");
  const at::Tensor x = example("mlp");
  torch::jit::Module lowered = tbk::lower(m, "tbk_onednn", spec_for(x));

  SUBCASE("a call with another shape than the example's, beyond the batch") {
    const at::Tensor other_batch = at::randn({8, 1, 28, 28});  // taken: built for batch 8 on first use
    CHECK(relative_error(lowered.forward({other_batch}).toTensor(), m.forward({other_batch}).toTensor()) <= 1e-4);
    const std::string error = error_of([&] { lowered.forward({at::randn({1, 1, 28, 14})}); });
    CHECK_CONTAINS(error, "tbk_onednn.forward");
    CHECK_CONTAINS(error, "input 0 has shape [1, 1, 28, 14]; this method was compiled for [1, 1, 28, 28]");
  }
  SUBCASE("a call with another dtype") {
    const std::string error = error_of([&] { lowered.forward({x.to(at::kDouble)}); });
    CHECK_CONTAINS(error, "tbk_onednn.forward");
    CHECK_CONTAINS(error, "input 0 should be a float32 CPU tensor, got Double");
  }
  SUBCASE("no example inputs") {
    const std::string error = error_of([&] { tbk::lower(m, "tbk_onednn", tbk::spec().method("forward")); });
    CHECK_CONTAINS(error, "tbk_onednn");
    CHECK_CONTAINS(error, "tbk_onednn.forward: method 'forward' needs example inputs (compile spec option 'example_inputs')");
  }
  SUBCASE("example inputs that are not tensors, or of another dtype") {
    std::string error = error_of([&] {
      tbk::lower(m, "tbk_onednn", tbk::spec().method("forward", {{"example_inputs", c10::List<int64_t>({1, 2})}}));
    });
    CHECK_CONTAINS(error, "tbk_onednn.forward: example input 0 of method 'forward' should be a Tensor, got int(1)");
    error = error_of([&] { tbk::lower(m, "tbk_onednn", spec_for(x.to(at::kDouble))); });
    CHECK_CONTAINS(error, "its input is Double (example input 0); tbk_onednn runs float32");
  }
  SUBCASE("example inputs of a shape the network cannot take") {
    const std::string error = error_of([&] { tbk::lower(m, "tbk_onednn", spec_for(at::randn({1, 1, 28, 27}))); });
    CHECK_CONTAINS(error, "tbk_onednn cannot run aten::linear");
    CHECK_CONTAINS(error, "weight [512, 784] does not fit input [1, 756]");
  }
}

// Payloads a hostile or damaged model file could carry: each is refused at load time with what is
// wrong, before oneDNN sees anything.
TEST_CASE("tbk_onednn refuses a malformed payload, naming what is wrong") {
  torch::jit::Module m = network("mlp");
  const at::Tensor x = example("mlp");
  // The payload PyTorch keeps in a natively lowered module, and the backend object's compile.
  const torch::jit::Module inner = tbk::lower(m, "tbk_onednn", spec_for(x)).attr("__loweredModule__").toModule();
  const c10::IValue payload = inner.attr("__processed_module");
  const at::Tensor blob = payload.toGenericDict().at("forward").toTensor();
  torch::jit::Object backend(inner.attr("__backend").toObject());
  const c10::IValue forward_spec = tbk::spec().method("forward").dict();
  auto with_blob = [](const at::Tensor& b) {  // checksummed, as tbk_onednn writes it: the decoder is checked
    c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
    d.insert("forward", b);
    tbk_onednn::add_checksums(d);
    return c10::IValue(d);
  };
  auto without_checksums = [](const at::Tensor& b) {
    c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
    d.insert("forward", b);
    return c10::IValue(d);
  };
  auto compile_error = [&](const c10::IValue& p) {
    return error_of([&] { backend.get_method("compile")({p, forward_spec}); });
  };
  CHECK(backend.get_method("compile")({payload, forward_spec}).toGenericDict().contains("forward"));

  at::Tensor versioned = blob.clone();
  versioned[8] = 5;  // the version field follows the 8-byte magic
  CHECK_CONTAINS(compile_error(with_blob(versioned)), "payload format version 5; this build of tbk_onednn reads versions 1 to 4");
  at::Tensor first_version = blob.clone();  // a model lowered before version 2 still loads
  first_version[8] = 1;
  CHECK(backend.get_method("compile")({with_blob(first_version), forward_spec}).toGenericDict().contains("forward"));
  // Before version 3 a payload had no checksums; from version 3 on, one without them is damaged
  // (its ":checksums" renamed by a flipped byte would otherwise leave every part unchecked).
  at::Tensor second_version = blob.clone();
  second_version[8] = 2;
  CHECK(backend.get_method("compile")({without_checksums(second_version), forward_spec}).toGenericDict().contains("forward"));
  CHECK_CONTAINS(compile_error(without_checksums(blob)), "the payload has no checksums part, though its part 'forward' "
                                                          "(the program and weights of method forward) is of format "
                                                          "version 4, always written with one");
  at::Tensor foreign = blob.clone();
  foreign[0] = 'X';
  CHECK_CONTAINS(compile_error(with_blob(foreign)), "not a tbk_onednn payload");
  CHECK_CONTAINS(compile_error(with_blob(blob.narrow(0, 0, blob.numel() - 3))), "malformed payload for method forward: payload says 1 outputs but has only 1 bytes left");
  CHECK_CONTAINS(compile_error(with_blob(blob.to(at::kFloat))), "should be a contiguous 1-D uint8 CPU tensor");
  CHECK_CONTAINS(compile_error(c10::IValue(int64_t{3})), "the payload is a Int, not the Dict[str, Tensor] tbk_onednn writes");
  c10::impl::GenericDict other(c10::StringType::get(), c10::TensorType::get());
  other.insert("helper", blob);
  tbk_onednn::add_checksums(other);
  CHECK_CONTAINS(compile_error(c10::IValue(other)), "the payload has no program for method forward");

  // A program that decodes but reads a value made after it, and a weight that does not fit.
  tbk_onednn::program p = tbk_onednn::decode(blob.data_ptr<uint8_t>(), static_cast<std::size_t>(blob.numel()));
  auto encoded = [](const tbk_onednn::program& q) {
    const std::vector<uint8_t> bytes = tbk_onednn::encode(q);
    return at::tensor(at::ArrayRef<uint8_t>(bytes), at::kByte);
  };
  tbk_onednn::program forward_read = p;
  forward_read.ops[0].inputs[0] = 5;
  CHECK_CONTAINS(compile_error(with_blob(encoded(forward_read))), "reads value 5, which is not made before it");
  tbk_onednn::program shared_weight = p;  // two operations naming one weight (the first frees it when packed)
  std::vector<tbk_onednn::operation*> weighted;
  for (tbk_onednn::operation& op : shared_weight.ops) {
    if (!op.weights.empty()) weighted.push_back(&op);
  }
  REQUIRE(weighted.size() >= 2);
  weighted[1]->weights.back() = weighted[0]->weights.back();
  CHECK_CONTAINS(compile_error(with_blob(encoded(shared_weight))), "which another operation uses");
  tbk_onednn::program bad_weight = p;
  bad_weight.weights[0].shape = {784, 512};
  CHECK_CONTAINS(compile_error(with_blob(encoded(bad_weight))), "does not fit input");
  // version 1 had no permute: a payload that says version 1 and has one is refused
  tbk_onednn::program permuted;
  permuted.input_shapes = {{2, 3}};
  permuted.ops = {{tbk_onednn::op_kind::permute, {0}, {1, 0}, {}, {}}};
  permuted.outputs = {1};
  at::Tensor old_permute = encoded(permuted);
  old_permute[8] = 1;
  CHECK_CONTAINS(compile_error(with_blob(old_permute)), "operation 0 has unknown kind 9 for a payload of version 1");
  // int8 came with version 4: a quantize, or an int8 linear layer, in a payload that says version 3 is refused
  tbk_onednn::program quantizes;
  quantizes.input_shapes = {{2, 3}};
  quantizes.ops = {{tbk_onednn::op_kind::quantize, {0}, {0, 128}, {0.5f}, {}}};
  quantizes.outputs = {1};
  at::Tensor old_quantize = encoded(quantizes);
  old_quantize[8] = 3;
  CHECK_CONTAINS(compile_error(with_blob(old_quantize)), "operation 0 has unknown kind 14 for a payload of version 3");
  tbk_onednn::program int8_linear;
  int8_linear.input_shapes = {{2, 3}};
  int8_linear.weights = {{{4, 3}, std::vector<float>(12, 1)}, {{4}, std::vector<float>(4, 0.1f)}, {{4}, std::vector<float>(4, 0)}};
  int8_linear.ops = {{tbk_onednn::op_kind::linear, {0}, {0, 128}, {0.5f}, {0, 1, 2}}};  // (its input's type unchecked)
  int8_linear.outputs = {1};
  at::Tensor old_linear = encoded(int8_linear);
  CHECK(backend.get_method("compile")({with_blob(old_linear), forward_spec}).toGenericDict().contains("forward"));
  old_linear[8] = 3;
  CHECK_CONTAINS(compile_error(with_blob(old_linear)), "operation 0 is an int8 linear, which a payload of version 3 cannot hold");

  // Other shapes: a note that says the method is read again, and the frozen module it needs.
  auto with_module = [&](const c10::optional<at::Tensor>& module) {
    c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
    d.insert("forward", blob);
    d.insert("forward:other_shapes", at::empty({0}, at::kByte));  // empty: read again
    if (module) d.insert(":frozen_module", *module);
    tbk_onednn::add_checksums(d);
    return c10::IValue(d);
  };
  CHECK_CONTAINS(compile_error(with_module(c10::nullopt)),
                 "the payload says method forward is read again at other input shapes, but it keeps no frozen module");
  CHECK_CONTAINS(compile_error(with_module(at::ones({64}, at::kByte))),
                 "the frozen module that the payload keeps for other input shapes is not a TorchScript archive");
  CHECK_CONTAINS(compile_error(with_module(at::ones({64}, at::kFloat))), "should be a contiguous 1-D uint8 CPU tensor");
  at::Tensor zip_then_garbage = at::full({64}, 7, at::kByte);  // begins as a zip does, is none
  zip_then_garbage[0] = 'P', zip_then_garbage[1] = 'K', zip_then_garbage[2] = 3, zip_then_garbage[3] = 4;
  const c10::IValue handles = backend.get_method("compile")({with_module(zip_then_garbage), forward_spec});
  auto call_at = [&](const at::Tensor& input) {
    c10::impl::GenericList inputs(c10::AnyType::get());
    inputs.push_back(input);
    return backend.get_method("execute")({handles.toGenericDict().at("forward"), inputs});
  };
  CHECK(relative_error(call_at(x).toListRef()[0].toTensor(), m.forward({x}).toTensor()) <= 1e-4);  // its example's shape
  for (int twice = 0; twice < 2; ++twice) {  // the failed load is remembered, and said again
    const std::string error = error_of([&] { call_at(at::randn({1, 1, 28, 14})); });
    CHECK_CONTAINS(error, "input 0 has shape [1, 1, 28, 14]; this method was compiled for [1, 1, 28, 28], and read again "
                          "at the shapes of this call, the frozen module that the payload keeps for other input shapes "
                          "cannot be read: ");
  }
}

TEST_CASE("the shape rules of permute, slice, layer_norm, matmul, constant, quantize and dequantize refuse what no lowering makes") {
  auto error_for = [](tbk_onednn::operation op, std::vector<tbk_onednn::weight> weights = {}) {
    tbk_onednn::program p;
    p.input_shapes = {{2, 3, 4}, {2, 4, 5}};
    p.weights = std::move(weights);
    p.ops = {std::move(op)};
    p.outputs = {2};
    return error_of([&] { tbk_onednn::infer_shapes(p); });
  };
  using k = tbk_onednn::op_kind;
  CHECK_CONTAINS(error_for({k::permute, {0}, {0, 0, 2}, {}, {}}), "operation 0 (permute): dims must name each dimension of the input [2, 3, 4] once");
  CHECK_CONTAINS(error_for({k::slice, {0}, {1, 2, 2}, {}, {}}), "operation 0 (slice): slice 2 + 2 does not fit size 3 of dim 1");
  CHECK_CONTAINS(error_for({k::layer_norm, {0}, {}, {1e-5f}, {0, 1}}, {{{3}, {1, 1, 1}}, {{3}, {0, 0, 0}}}),
                 "operation 0 (layer_norm): scale [3] and shift [3] must both be [4]");
  CHECK_CONTAINS(error_for({k::matmul, {1, 0}, {0}, {1.f}, {}}), "operation 0 (matmul): operands [2, 4, 5] and [2, 3, 4] do not multiply");
  CHECK_CONTAINS(error_for({k::constant, {0}, {}, {}, {0}}, {{{2}, {1, 2}}}), "operation 0 (constant): has 1 inputs");
  CHECK_CONTAINS(error_for({k::quantize, {0}, {2, 0}, {0.1f}, {}}), "operation 0 (quantize): unknown int8 data type");
  CHECK_CONTAINS(error_for({k::quantize, {0}, {0, 300}, {0.1f}, {}}), "operation 0 (quantize): zero point 300 is outside u8's range");
  CHECK_CONTAINS(error_for({k::dequantize, {0}, {1, 0}, {0.f}, {}}), "operation 0 (dequantize): scale 0.000000 must be finite and above 0");
  // and what lowering makes passes: [2, 3, 4] @ [2, 4, 5]
  tbk_onednn::program fine;
  fine.input_shapes = {{2, 3, 4}, {2, 4, 5}};
  fine.ops = {{k::matmul, {0, 1}, {0}, {0.5f}, {}}};
  fine.outputs = {2};
  CHECK(tbk_onednn::infer_shapes(fine).back() == tbk_onednn::shape_t{2, 3, 5});
}

TEST_CASE("host memory: 1 MiB and more on 2 MiB boundaries, and the weights' pool hands out aligned memory no two weights share") {
  namespace d = tbk_onednn::detail;
  auto aligned = [](const void* p, std::size_t to) { return reinterpret_cast<std::uintptr_t>(p) % to == 0; };
  const d::host_buffer big(d::huge_page_threshold);
  const d::host_buffer small(100);
  CHECK(aligned(small.get(), 64));
  CHECK_FALSE(small.on_huge_pages());
#if defined(__linux__)
  CHECK(big.on_huge_pages());
  CHECK(aligned(big.get(), d::huge_page_bytes));
#endif
  std::memset(big.get(), 1, d::huge_page_threshold);
  d::host_pool pool;
  std::vector<std::pair<char*, std::size_t>> taken;
  for (std::size_t bytes : {std::size_t{100}, std::size_t{4096}, std::size_t{3} << 20, std::size_t{1},
                            d::host_pool::block_bytes + 1, std::size_t{64}}) {
    char* p = pool.allocate(bytes);
    CHECK(aligned(p, 64));
    std::memset(p, 0x5a, bytes);  // all of it is writable
    taken.push_back({p, bytes});
  }
  for (std::size_t i = 0; i < taken.size(); ++i) {
    for (std::size_t j = i + 1; j < taken.size(); ++j) {
      const bool apart = taken[i].first + taken[i].second <= taken[j].first || taken[j].first + taken[j].second <= taken[i].first;
      CHECK_MESSAGE(apart, "allocations " << i << " and " << j << " overlap");
    }
  }
  CHECK(taken[1].first == taken[0].first + 128);  // in order, 64-byte steps, in one block
#if defined(__linux__)
  CHECK(aligned(taken[2].first, d::huge_page_bytes));  // 3 MiB: the first block on huge pages
#endif
}
