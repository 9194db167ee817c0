// unit-executorch.cpp: the ExecuTorch side of tbk (built when ExecuTorch is found): the processed
// payload and option bytes (tbk/executorch_codec.hpp) and the delegate (tbk/executorch.hpp) driven
// as ExecuTorch's runtime drives it (init, execute, destroy) on the add/sub backend, with the
// runtime's tensors made by hand: results written into the runtime's outputs, every failure an
// error code instead of an exception, a duplicate registration refused. The whole path from a
// .pte is tests/python/test_executorch.py.

#include <ATen/ATen.h>
#include <tbk/executorch.hpp>

#include <executorch/extension/tensor/tensor_ptr_maker.h>  // executorch::extension::from_blob

#include <cstring>  // std::memcpy
#include <string>   // std::string
#include <vector>   // std::vector

#include "add_sub.hpp"
#include "support.hpp"  // last: doctest's CHECK macros over glog's

using tbk_test::error_of;
namespace et = ::executorch::runtime;
namespace etx = ::executorch::extension;

namespace {

std::vector<char> processed_for(const std::string& backend, int64_t inputs = 2, int64_t outputs = 2) {
  return tbk::executorch::encode_processed({backend, "forward", c10::IValue(), inputs, outputs, {}});
}

std::vector<char> option_bytes(const c10::IValue& value) { return torch::jit::pickle_save(value); }

// What init returns for `processed` and `options` (key, bytes).
et::Result<et::DelegateHandle*> init(const tbk::executorch::delegate<add_sub_backend>& d, std::vector<char>& processed,
                                     std::vector<std::pair<std::string, std::vector<char>>> options = {}) {
  et::FreeableBuffer buffer(processed.data(), processed.size(), nullptr);
  std::vector<et::CompileSpec> specs;
  for (auto& [key, bytes] : options) specs.push_back({key.c_str(), {bytes.data(), bytes.size()}});
  et::BackendInitContext context(nullptr);
  return d.init(context, &buffer, {specs.data(), specs.size()});
}

}  // namespace

TEST_CASE("the processed payload reads back, and names what is wrong with bytes it cannot read") {
  const at::Tensor weights = at::arange(6, at::kFloat);
  c10::impl::GenericDict payload(c10::StringType::get(), c10::TensorType::get());
  payload.insert("forward", weights);
  const std::vector<char> bytes = tbk::executorch::encode_processed({"my_backend", "forward", payload, 3, 1, {}});
  const auto back = tbk::executorch::decode_processed("my_backend", bytes.data(), bytes.size());
  CHECK(back.backend == "my_backend");
  CHECK(back.method == "forward");
  CHECK(back.inputs == 3);
  CHECK(back.outputs == 1);
  CHECK(back.payload.toGenericDict().at("forward").toTensor().equal(weights));

  CHECK_CONTAINS(error_of([&] { tbk::executorch::decode_processed("other", bytes.data(), bytes.size()); }),
                 "other: the delegate's processed payload was lowered for backend 'my_backend', not 'other'");
  const std::string garbage = "not a payload";
  CHECK_CONTAINS(error_of([&] { tbk::executorch::decode_processed("my_backend", garbage.data(), garbage.size()); }),
                 "my_backend: the delegate's processed payload (13 bytes) is not tbk's format (tbk.executorch)");
  const std::vector<char> newer = torch::jit::pickle_save(c10::ivalue::Tuple::create(
      {c10::IValue("tbk.executorch"), c10::IValue(int64_t(2)), c10::IValue("my_backend")}));
  CHECK_CONTAINS(error_of([&] { tbk::executorch::decode_processed("my_backend", newer.data(), newer.size()); }),
                 "has format version 2; this build of tbk reads version 1: lower the model again with this tbk");
}

TEST_CASE("a module payload (a backend without preprocess) reads back as the module") {
  torch::jit::Module m("M");
  m.define("def forward(self, x: Tensor) -> Tensor:\n  return x * 2\n");
  const std::vector<char> bytes = tbk::executorch::encode_processed({"b", "forward", m._ivalue(), 1, 1, {}});
  const c10::IValue payload = tbk::executorch::decode_processed("b", bytes.data(), bytes.size()).payload;
  REQUIRE(payload.isObject());
  const at::Tensor x = at::ones({2});
  CHECK(torch::jit::Module(payload.toObject()).forward({x}).toTensor().equal(x * 2));
}

TEST_CASE("options are torch.save's bytes, of any mix of types") {
  c10::impl::GenericDict nested(c10::StringType::get(), c10::AnyType::get());
  nested.insert("threads", int64_t(2));
  nested.insert("scale", 0.5);
  const std::vector<char> bytes = option_bytes(nested);
  const c10::IValue back = tbk::executorch::decode_option("b", "nested", bytes.data(), bytes.size());
  CHECK(back.toGenericDict().at("threads").toInt() == 2);
  CHECK(back.toGenericDict().at("scale").toDouble() == 0.5);
  const std::string garbage = "xyz";
  CHECK_CONTAINS(error_of([&] { tbk::executorch::decode_option("b", "threads", garbage.data(), garbage.size()); }),
                 "b: compile spec 'threads' (3 bytes) is not an option value as torch.save writes it");
}

TEST_CASE("the delegate runs the add/sub policies on the runtime's tensors and writes its outputs") {
  const tbk::executorch::delegate<add_sub_backend> d("custom_backend");
  CHECK(d.is_available());
  std::vector<char> processed = processed_for("custom_backend");
  auto handle = init(d, processed, {{"recycle_outputs", option_bytes(true)}});
  REQUIRE(handle.ok());

  at::Tensor a = at::randn({2, 3}), b = at::randn({2, 3});
  at::Tensor sum = at::empty({2, 3}), difference = at::empty({2, 3});
  auto ta = etx::from_blob(a.data_ptr<float>(), {2, 3});
  auto tb = etx::from_blob(b.data_ptr<float>(), {2, 3});
  auto ts = etx::from_blob(sum.data_ptr<float>(), {2, 3});
  auto td = etx::from_blob(difference.data_ptr<float>(), {2, 3});
  et::EValue va(*ta), vb(*tb), vs(*ts), vd(*td);
  std::vector<et::EValue*> args{&va, &vb, &vs, &vd};
  et::BackendExecutionContext context;
  CHECK(d.execute(context, handle.get(), {args.data(), args.size()}) == et::Error::Ok);
  CHECK(sum.equal(a + b));
  CHECK(difference.equal(a - b));

  // the inputs and then the outputs, as lowered: one argument short is an error code, not a throw
  std::vector<et::EValue*> short_args{&va, &vb, &vs};
  CHECK(d.execute(context, handle.get(), {short_args.data(), short_args.size()}) == et::Error::InvalidArgument);
  d.destroy(handle.get());
}

TEST_CASE("an output of another shape is resized where the runtime allows, refused where it is static") {
  const tbk::executorch::delegate<add_sub_backend> d("custom_backend");
  std::vector<char> processed = processed_for("custom_backend");
  auto handle = init(d, processed);
  REQUIRE(handle.ok());
  at::Tensor a = at::randn({2, 3}), b = at::randn({2, 3});
  std::vector<float> sum_memory(6), difference_memory(6);
  auto ta = etx::from_blob(a.data_ptr<float>(), {2, 3});
  auto tb = etx::from_blob(b.data_ptr<float>(), {2, 3});
  // outputs planned as [3, 2] (an upper bound of 6 elements): resized to [2, 3]
  auto ts = etx::from_blob(sum_memory.data(), {3, 2});
  auto td = etx::from_blob(difference_memory.data(), {3, 2}, ::executorch::aten::ScalarType::Float,
                           ::executorch::aten::Device(::executorch::aten::DeviceType::CPU),
                           ::executorch::aten::TensorShapeDynamism::STATIC);
  et::EValue va(*ta), vb(*tb), vs(*ts), vd(*td);
  std::vector<et::EValue*> args{&va, &vb, &vs, &vd};
  et::BackendExecutionContext context;
  // the static output cannot take [2, 3]: an error code (after the first output was written)
  CHECK(d.execute(context, handle.get(), {args.data(), args.size()}) == et::Error::InvalidArgument);
  CHECK(ts->size(0) == 2);
  CHECK(ts->size(1) == 3);
  CHECK(at::from_blob(sum_memory.data(), {2, 3}).equal(a + b));
  d.destroy(handle.get());
}

TEST_CASE("init fails with an error code for a refused option, another backend's payload, or bytes not tbk's") {
  const tbk::executorch::delegate<add_sub_backend> d("custom_backend");
  std::vector<char> processed = processed_for("custom_backend");
  CHECK(init(d, processed, {{"recycle_outputs", option_bytes(c10::IValue("yes"))}}).error() == et::Error::InvalidProgram);
  std::vector<char> other = processed_for("tbk_onednn");
  CHECK(init(d, other).error() == et::Error::DelegateInvalidCompatibility);
  std::vector<char> garbage{'x', 'y'};
  CHECK(init(d, garbage).error() == et::Error::DelegateInvalidCompatibility);
  // a damaged count would make execute read outside its arguments: refused at init
  std::vector<char> damaged = processed_for("custom_backend", -1, 3);
  CHECK(init(d, damaged).error() == et::Error::DelegateInvalidCompatibility);
  CHECK_CONTAINS(error_of([&] { tbk::executorch::decode_processed("custom_backend", damaged.data(), damaged.size()); }),
                 "custom_backend: the delegate's processed payload is damaged");
}

// A compile policy that reads the example inputs, as backends that need shapes do.
struct example_count_handle {
  int64_t examples;
};
struct example_count_compile {
  static example_count_handle compile(const tbk::method_spec& method, const c10::IValue&) {
    return {static_cast<int64_t>(method.example_tensors().size())};
  }
};
struct example_count_execute {
  static at::Tensor execute(const example_count_handle& h, const at::Tensor& x) {
    return at::full_like(x, static_cast<double>(h.examples));
  }
};
using example_count_backend = tbk::backend<example_count_compile, example_count_execute>;

TEST_CASE("the example inputs preprocess was given reach compile, as in TorchScript") {
  const tbk::executorch::delegate<example_count_backend> d("example_count");
  std::vector<char> processed = tbk::executorch::encode_processed(
      {"example_count", "forward", c10::IValue(), 1, 1, {at::ones({2}), at::ones({3})}});
  et::FreeableBuffer buffer(processed.data(), processed.size(), nullptr);
  et::BackendInitContext context(nullptr);
  auto handle = d.init(context, &buffer, {});
  REQUIRE(handle.ok());
  at::Tensor x = at::zeros({4}), y = at::empty({4});
  auto tx = etx::from_blob(x.data_ptr<float>(), {4});
  auto ty = etx::from_blob(y.data_ptr<float>(), {4});
  et::EValue vx(*tx), vy(*ty);
  std::vector<et::EValue*> args{&vx, &vy};
  et::BackendExecutionContext run;
  CHECK(d.execute(run, handle.get(), {args.data(), args.size()}) == et::Error::Ok);
  CHECK(y.equal(at::full({4}, 2.0)));
  d.destroy(handle.get());
}

TEST_CASE("registering a name ExecuTorch has already is refused and says so") {
  // libcustom_backend registered "custom_backend" with ExecuTorch when it loaded
  CHECK(tbk::executorch::register_executorch_backend<add_sub_backend>("custom_backend") ==
        et::Error::RegistrationAlreadyRegistered);
  CHECK(et::get_backend_class("custom_backend") != nullptr);
}
