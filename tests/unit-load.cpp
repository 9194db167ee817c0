// unit-load.cpp: loading lowered models (tbk/load.hpp): tbk::load as torch::jit::load, its
// diagnostics for archives whose backends are not registered, and truncated or tampered archives.

#include "add_sub.hpp"  // add_sub_backend, registered again under a second name

#include <caffe2/serialize/inline_container.h>  // rewriting an archive for the load tests
#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <cstdio>      // std::remove
#include <filesystem>  // std::filesystem::temp_directory_path
#include <fstream>     // std::ofstream
#include <sstream>     // std::stringstream
#include <string>      // std::string
#include <utility>     // std::pair
#include <vector>      // std::vector

#include "add_sub_modules.hpp"  // pair_source, combining_module, pair_module, expected
#include "support.hpp"          // last: doctest's CHECK macros over glog's

using tbk_test::combining_module;
using tbk_test::error_of;
using tbk_test::expected;
using tbk_test::lowered_two_input;
using tbk_test::pair_module;
using tbk_test::pair_source;
using tbk_test::script;

namespace {

// The archive `module` saves to, with backends renamed in its code: a model made in a process
// that had backends this one lacks.
std::string archive_renaming(const torch::jit::Module& module,
                             const std::vector<std::pair<std::string, std::string>>& renames) {
  std::stringstream original;
  module.save(original);
  caffe2::serialize::PyTorchStreamReader reader(&original);
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  for (const std::string& record : reader.getAllRecords()) {
    auto [data, size] = reader.getRecord(record);
    std::string bytes(static_cast<const char*>(data.get()), size);
    const bool code = record.size() > 3 && record.compare(record.size() - 3, 3, ".py") == 0;
    for (const auto& [from, to] : renames) {
      for (auto at = bytes.find(from); code && at != std::string::npos;
           at = bytes.find(from, at + to.size())) {
        bytes.replace(at, from.size(), to);
      }
    }
    if (record != "version" && record != ".data/version") writer.writeRecord(record, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  return out;
}

// A second tbk backend in this process (the add/sub policies again, under another name).
void register_second_backend() {
  static const bool done = (tbk::register_backend<add_sub_backend>("tbk_lowering_second"), true);
  (void)done;
}

}  // namespace

TEST_CASE("tbk::load loads what torch::jit::load loads") {
  auto lowered = tbk::lower(script(pair_source), "custom_backend", tbk::spec().method("forward"));
  std::stringstream saved;
  lowered.save(saved);
  auto loaded = tbk::load(saved);
  auto a = torch::randn({2}), b = torch::randn({2});
  CHECK(torch::equal(loaded.forward({a, b}).toTuple()->elements()[0].toTensor(), a + b));
}

TEST_CASE("tbk::load names each backend the archive needs that is not registered") {
  register_second_backend();
  // A model with one submodule on each of two backends.
  auto mixed = combining_module(
      "Mixed", tbk::lower(pair_module("First"), "custom_backend", tbk::spec().method("forward")),
      tbk::lower(pair_module("Second"), "tbk_lowering_second", tbk::spec().method("forward")));
  auto a = torch::randn({3}), b = torch::randn({3});
  std::stringstream intact(archive_renaming(mixed, {}));
  CHECK(torch::allclose(tbk::load(intact).forward({a, b}).toTensor(), expected(a, b)));

  SUBCASE("one missing backend") {
    std::stringstream one(archive_renaming(mixed, {{"custom_backend", "gpu_backend"}}));
    auto text = error_of([&] { tbk::load(one); });
    CHECK_CONTAINS(text, "tbk::load: the model needs a backend that is not registered in this "
                         "process: gpu_backend (registered through tbk: ");
    CHECK_CONTAINS(text, "custom_backend");  // what is registered is listed
    CHECK_CONTAINS(text, "Link the library that registers it into the program, or load it first "
                         "(C++: dlopen; Python: torch.ops.load_library(path))");
    // PyTorch's own loader says much less about the same archive.
    one.clear();
    one.seekg(0);
    CHECK_CONTAINS(error_of([&] { torch::jit::load(one); }), "Unknown type name");
  }
  SUBCASE("two missing backends, both named") {
    std::stringstream two(archive_renaming(
        mixed, {{"custom_backend", "gpu_backend"}, {"tbk_lowering_second", "npu_backend"}}));
    auto text = error_of([&] { tbk::load(two); });
    CHECK_CONTAINS(text, "needs backends that are not registered in this process: ");
    CHECK_CONTAINS(text, "gpu_backend");
    CHECK_CONTAINS(text, "npu_backend");
  }
  SUBCASE("from a file, and with the lite interpreter") {
    auto path = (std::filesystem::temp_directory_path() / "tbk_unit_missing_backend.pt").string();
    {
      std::ofstream file(path, std::ios::binary);
      file << archive_renaming(mixed, {{"custom_backend", "gpu_backend"}});
    }
    CHECK_CONTAINS(error_of([&] { tbk::load(path); }),
                   "tbk::load: " + path + " needs a backend that is not registered");
    std::remove(path.c_str());

    std::stringstream lite;
    mixed._save_for_mobile(lite);
    CHECK(torch::allclose(tbk::load_for_mobile(lite).forward({a, b}).toTensor(), expected(a, b)));
  }
}

TEST_CASE("a truncated or tampered archive gives an error, not a crash") {
  auto lowered = lowered_two_input();
  std::stringstream saved;
  lowered.save(saved);
  const std::string bytes = saved.str();
  SUBCASE("truncated") {
    std::stringstream cut(bytes.substr(0, bytes.size() / 2));
    CHECK_FALSE(error_of([&] { tbk::load(cut); }).empty());
  }
  SUBCASE("garbage") {
    std::stringstream junk(std::string(1000, 'x'));
    CHECK_FALSE(error_of([&] { tbk::load(junk); }).empty());
  }
}
