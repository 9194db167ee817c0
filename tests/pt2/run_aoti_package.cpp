// run_aoti_package.cpp: runs an AOTInductor package (torch._inductor.aoti_compile_and_package of a
// program tbk.export lowered) from C++, as a deployment would: loads the backend's library first
// (its tbk.Region class and tbk::call_region operator), then the package with
// torch::inductor::AOTIModelPackageLoader. Usage: run_aoti_package PACKAGE LIBRARY INPUTS OUTPUTS,
// INPUTS a list of tensors as torch.save writes it, OUTPUTS a tuple of them, written the same way.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>  // AOTIModelPackageLoader
#include <torch/serialize.h>                                        // torch::pickle_load, pickle_save

#include <dlfcn.h>  // dlopen

#include <fstream>   // std::ifstream, std::ofstream
#include <iostream>  // std::cerr
#include <iterator>  // std::istreambuf_iterator
#include <vector>    // std::vector

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: run_aoti_package PACKAGE LIBRARY INPUTS OUTPUTS\n";
    return 2;
  }
  if (dlopen(argv[2], RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    std::cerr << "cannot load " << argv[2] << ": " << dlerror() << "\n";
    return 1;
  }
  try {
    std::ifstream in(argv[3], std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const c10::IValue read = torch::pickle_load(bytes);  // (kept: the loop reads its elements)
    std::vector<at::Tensor> inputs;
    for (const c10::IValue& v : read.toListRef()) inputs.push_back(v.toTensor());
    torch::inductor::AOTIModelPackageLoader loader(argv[1]);
    const std::vector<at::Tensor> outputs = loader.run(inputs);
    // a tuple: what torch.load reads with weights_only (a typed tensor list is not)
    const std::vector<char> written = torch::pickle_save(c10::ivalue::Tuple::create(std::vector<c10::IValue>(outputs.begin(), outputs.end())));
    std::ofstream(argv[4], std::ios::binary).write(written.data(), static_cast<std::streamsize>(written.size()));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
