// TensorRT backend (TensorRT 10 API): deserialises model.engine (built on this GPU by `edgeprune
// verify` or trtexec) and runs it with enqueueV3. Needs TensorRT and the CUDA runtime; not built or
// run on machines without them (CMake says so).
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>

#include "backend.hpp"

namespace edgeprune {

namespace {
class Logger : public nvinfer1::ILogger {
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kWARNING) std::cerr << "tensorrt: " << msg << "\n";
  }
};

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}
}  // namespace

class TrtBackend : public Backend {
 public:
  explicit TrtBackend(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open engine " + path);
    std::vector<char> blob((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine_) throw std::runtime_error("TensorRT cannot deserialise " + path + " (corrupt, or built for another GPU/TensorRT)");
    context_.reset(engine_->createExecutionContext());
    for (int i = 0; i < engine_->getNbIOTensors(); ++i) {
      const char* n = engine_->getIOTensorName(i);
      (engine_->getTensorIOMode(n) == nvinfer1::TensorIOMode::kINPUT ? input_ : output_) = n;
    }
    check(cudaStreamCreate(&stream_), "cudaStreamCreate");
  }
  ~TrtBackend() override {
    cudaFree(din_);
    cudaFree(dout_);
    cudaStreamDestroy(stream_);
  }
  std::string name() const override { return "tensorrt"; }

  std::vector<float> run(const float* x, const std::vector<int64_t>& shape) override {
    nvinfer1::Dims d{};
    d.nbDims = static_cast<int32_t>(shape.size());
    size_t n = 1;
    for (size_t i = 0; i < shape.size(); ++i) { d.d[i] = shape[i]; n *= static_cast<size_t>(shape[i]); }
    context_->setInputShape(input_.c_str(), d);
    nvinfer1::Dims od = context_->getTensorShape(output_.c_str());
    size_t m = 1;
    for (int i = 0; i < od.nbDims; ++i) m *= static_cast<size_t>(od.d[i]);
    if (n > in_cap_) { cudaFree(din_); check(cudaMalloc(&din_, n * sizeof(float)), "cudaMalloc"); in_cap_ = n; }
    if (m > out_cap_) { cudaFree(dout_); check(cudaMalloc(&dout_, m * sizeof(float)), "cudaMalloc"); out_cap_ = m; }
    check(cudaMemcpyAsync(din_, x, n * sizeof(float), cudaMemcpyHostToDevice, stream_), "copy in");
    context_->setTensorAddress(input_.c_str(), din_);
    context_->setTensorAddress(output_.c_str(), dout_);
    if (!context_->enqueueV3(stream_)) throw std::runtime_error("TensorRT enqueueV3 failed");
    std::vector<float> out(m);
    check(cudaMemcpyAsync(out.data(), dout_, m * sizeof(float), cudaMemcpyDeviceToHost, stream_), "copy out");
    check(cudaStreamSynchronize(stream_), "sync");
    return out;
  }

 private:
  Logger logger_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  std::string input_, output_;
  cudaStream_t stream_{};
  void* din_ = nullptr;
  void* dout_ = nullptr;
  size_t in_cap_ = 0, out_cap_ = 0;
};

std::unique_ptr<Backend> make_trt_backend(const std::string& path) { return std::make_unique<TrtBackend>(path); }

}  // namespace edgeprune
