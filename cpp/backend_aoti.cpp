// LibTorch backend: runs an AOTInductor package (model.pt2) compiled by edgeprune's export.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/torch.h>

#include <stdexcept>

#include "backend.hpp"

namespace edgeprune {

class AotiBackend : public Backend {
 public:
  AotiBackend(const std::string& path, int threads) {
    at::set_num_threads(threads);  // intra-op threads, as the profiler's 1 by default
    try {
      loader_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      throw std::runtime_error("cannot load AOTInductor package " + path + ": " + msg.substr(0, msg.find('\n')));
    }
  }
  std::string name() const override { return "libtorch-aoti"; }

  std::vector<float> run(const float* x, const std::vector<int64_t>& shape) override {
    c10::InferenceMode guard;
    auto input = torch::from_blob(const_cast<float*>(x), shape, torch::kFloat32);
    std::vector<at::Tensor> out = loader_->run({input});
    at::Tensor logits = out.at(0).contiguous().to(torch::kFloat32);
    return std::vector<float>(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  }

 private:
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
};

std::unique_ptr<Backend> make_aoti_backend(const std::string& path, int threads) {
  return std::make_unique<AotiBackend>(path, threads);
}

}  // namespace edgeprune
