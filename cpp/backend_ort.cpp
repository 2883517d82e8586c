// ONNX Runtime backend (C++ API): runs model.onnx / model.int8.onnx with N intra-op threads, spinning
// or not, as the edgeprune profiler and verify open their sessions.
#include <onnxruntime_cxx_api.h>

#include <stdexcept>

#include "backend.hpp"

namespace edgeprune {

class OrtBackend : public Backend {
 public:
  OrtBackend(const std::string& path, int threads, bool spinning) : env_(ORT_LOGGING_LEVEL_ERROR, "edgeprune-run") {
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(threads);
    so.SetInterOpNumThreads(1);
    so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    so.AddConfigEntry("session.intra_op.allow_spinning", spinning ? "1" : "0");
    try {
      session_ = std::make_unique<Ort::Session>(env_, path.c_str(), so);
    } catch (const Ort::Exception& e) {
      throw std::runtime_error("ONNX Runtime cannot load " + path + ": " + e.what());
    }
    Ort::AllocatorWithDefaultOptions alloc;
    input_ = session_->GetInputNameAllocated(0, alloc).get();
    output_ = session_->GetOutputNameAllocated(0, alloc).get();
  }
  std::string name() const override { return "onnxruntime"; }

  std::vector<float> run(const float* x, const std::vector<int64_t>& shape) override {
    size_t n = 1;
    for (auto d : shape) n *= static_cast<size_t>(d);
    auto mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    Ort::Value in = Ort::Value::CreateTensor<float>(mem, const_cast<float*>(x), n, shape.data(), shape.size());
    const char* in_names[] = {input_.c_str()};
    const char* out_names[] = {output_.c_str()};
    auto out = session_->Run(Ort::RunOptions{nullptr}, in_names, &in, 1, out_names, 1);
    const float* p = out[0].GetTensorData<float>();
    size_t m = out[0].GetTensorTypeAndShapeInfo().GetElementCount();
    return std::vector<float>(p, p + m);
  }

 private:
  Ort::Env env_;
  std::unique_ptr<Ort::Session> session_;
  std::string input_, output_;
};

std::unique_ptr<Backend> make_ort_backend(const std::string& path, int threads, bool spinning) {
  return std::make_unique<OrtBackend>(path, threads, spinning);
}

}  // namespace edgeprune
