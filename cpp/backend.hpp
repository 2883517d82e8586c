// The runner's backend interface: one loaded model, one batch-N float32 NCHW input, logits out.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edgeprune {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Run one input of `shape` (N, C, H, W); returns N x classes logits, row-major.
  virtual std::vector<float> run(const float* x, const std::vector<int64_t>& shape) = 0;
};

// Each factory is defined in its backend's source file; CMake compiles the ones whose engine it found
// and defines EDGEPRUNE_WITH_{TORCH,ORT,TRT}.
std::unique_ptr<Backend> make_aoti_backend(const std::string& path, int threads);
std::unique_ptr<Backend> make_ort_backend(const std::string& path, int threads, bool spinning);
std::unique_ptr<Backend> make_trt_backend(const std::string& path);

}  // namespace edgeprune
