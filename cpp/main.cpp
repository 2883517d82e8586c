// edgeprune-run: the C++ reference loader for a shipped pick.
//
//   edgeprune-run MODEL --input images.npy [--manifest manifest.json] [--top-k 5]
//                 [--warmup 30] [--repetitions 100] [--passes 3] [--threads N] [--spinning 0|1]
//                 [--logits-out out.npy]
//
// MODEL is model.pt2 (LibTorch / AOTInductor), model.onnx (ONNX Runtime) or model.engine (TensorRT);
// which backends exist depends on what CMake found. The manifest (default: manifest.json beside the
// model, required) gives the input contract (shape, class names) and the sha256 of every shipped file. Any bad
// input ends with one line on stderr and a non-zero exit code.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend.hpp"
#include "json.hpp"
#include "npy.hpp"
#include "sha256.hpp"

namespace ep = edgeprune;

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string model, input, manifest, logits_out;
  int top_k = 5, warmup = 30, repetitions = 100, passes = 3;
  int threads = 0;   // 0: the manifest's (the target's), else 1
  int spinning = -1; // -1: the manifest's (the target's), else on (ONNX Runtime's default)
};

const char* kUsage =
    "usage: edgeprune-run MODEL --input X.npy [--manifest manifest.json] [--top-k K] [--warmup N]\n"
    "                     [--repetitions N] [--passes N] [--threads N] [--spinning 0|1] [--logits-out out.npy]";

int to_int(const std::string& flag, const std::string& v, int lo) {
  try {
    size_t used = 0;
    int x = std::stoi(v, &used);
    if (used != v.size() || x < lo) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw UsageError(flag + " needs an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  }
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "--input") o.input = next();
    else if (a == "--manifest") o.manifest = next();
    else if (a == "--logits-out") o.logits_out = next();
    else if (a == "--top-k") o.top_k = to_int(a, next(), 1);
    else if (a == "--warmup") o.warmup = to_int(a, next(), 0);
    else if (a == "--repetitions") o.repetitions = to_int(a, next(), 0);
    else if (a == "--passes") o.passes = to_int(a, next(), 1);
    else if (a == "--threads") o.threads = to_int(a, next(), 1);
    else if (a == "--spinning") {
      std::string v = next();
      if (v != "0" && v != "1") throw UsageError("--spinning needs 0 or 1, got '" + v + "'");
      o.spinning = v == "1";
    }
    else if (a == "-h" || a == "--help") { std::cout << kUsage << "\n"; std::exit(0); }
    else if (!a.empty() && a[0] == '-') throw UsageError("unknown option " + a);
    else if (o.model.empty()) o.model = a;
    else throw UsageError("unexpected argument " + a);
  }
  if (o.model.empty()) throw UsageError("no MODEL given");
  if (o.input.empty()) throw UsageError("--input X.npy is required");
  return o;
}

std::string dirname_of(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? "." : p.substr(0, s);
}
std::string basename_of(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}
bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
bool exists(const std::string& p) { return std::ifstream(p).good(); }

struct Contract {
  bool present = false;
  std::vector<int64_t> shape;  // N, C, H, W (N = -1: dynamic)
  std::vector<std::string> classes;
  int threads = 1;       // the target's intra-op threads (manifests before this field: 1)
  bool spinning = true;  // whether its idle intra-op threads spin-wait (ONNX Runtime's default)
};

Contract read_manifest(const Options& o) {
  Contract c;
  std::string path = o.manifest.empty() ? dirname_of(o.model) + "/manifest.json" : o.manifest;
  if (!exists(path))  // the runner never guesses the input contract: a wrong shape can crash a compiled model
    throw std::runtime_error("manifest not found: " + path + (o.manifest.empty() ? " (pass --manifest PATH)" : ""));
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  ep::Json m;
  try {
    m = ep::parse_json(ss.str());
    for (const auto& d : m.at("input_shape").array) c.shape.push_back(static_cast<int64_t>(d.number));
    for (const auto& n : m.at("class_names").array) c.classes.push_back(n.string);
    if (m.has("threads")) c.threads = static_cast<int>(m.at("threads").number);
    if (m.has("spinning")) c.spinning = m.at("spinning").boolean;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  if (c.shape.size() != 4) throw std::runtime_error(path + ": input_shape must have 4 dimensions (N, C, H, W)");
  const std::string name = basename_of(o.model);
  const ep::Json& files = m.at("files");
  if (files.has(name)) {
    if (ep::sha256_file(o.model) != files.at(name).at("sha256").string)
      throw std::runtime_error(o.model + ": sha256 does not match " + path + " (the file changed or is corrupt)");
  } else {
    std::cerr << "edgeprune-run: note: " << name << " is not listed in " << path << "; its checksum is not checked\n";
  }
  c.present = true;
  return c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
double percentile(std::vector<double> v, double q) {  // linear interpolation, as numpy
  std::sort(v.begin(), v.end());
  double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

std::unique_ptr<ep::Backend> open_backend(const Options& o, int threads, bool spinning) {
  if (!exists(o.model)) throw std::runtime_error("model file not found: " + o.model);
  if (ends_with(o.model, ".pt2")) {
#ifdef EDGEPRUNE_WITH_TORCH
    return ep::make_aoti_backend(o.model, threads);
#else
    throw std::runtime_error("this edgeprune-run was built without the LibTorch backend (.pt2); install torch and rebuild");
#endif
  }
  if (ends_with(o.model, ".onnx")) {
#ifdef EDGEPRUNE_WITH_ORT
    return ep::make_ort_backend(o.model, threads, spinning);
#else
    throw std::runtime_error("this edgeprune-run was built without the ONNX Runtime backend (.onnx); set ONNXRUNTIME_ROOT and rebuild");
#endif
  }
  if (ends_with(o.model, ".engine")) {
#ifdef EDGEPRUNE_WITH_TRT
    return ep::make_trt_backend(o.model);
#else
    throw std::runtime_error("this edgeprune-run was built without the TensorRT backend (.engine); install TensorRT and rebuild");
#endif
  }
  throw std::runtime_error("unknown model type " + o.model + " (expected .pt2, .onnx or .engine)");
}

std::string join_shape(const std::vector<int64_t>& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

int run(const Options& o) {
  Contract c = read_manifest(o);
  ep::NpyArray x = ep::read_npy(o.input);
  if (x.shape.size() == 3) x.shape.insert(x.shape.begin(), 1);
  if (x.shape.size() != 4 || x.shape[0] < 1)
    throw std::runtime_error(o.input + ": input must be N x C x H x W float32, got shape " + join_shape(x.shape));
  if (c.present && !std::equal(c.shape.begin() + 1, c.shape.end(), x.shape.begin() + 1))
    throw std::runtime_error(o.input + ": input shape " + join_shape(x.shape) + " does not match the model's " +
                             join_shape(c.shape) + " (manifest)");
  // the target's thread settings, as the manifest records them, unless the command line says otherwise
  const int threads = o.threads > 0 ? o.threads : c.threads;
  const bool spinning = o.spinning >= 0 ? o.spinning == 1 : c.spinning;
  auto backend = open_backend(o, threads, spinning);
  const int64_t n = x.shape[0];
  const int64_t batch = (c.present && c.shape[0] > 0) ? c.shape[0] : n;  // static batch: run in chunks
  if (n % batch) throw std::runtime_error("the model has a static batch of " + std::to_string(batch) + ", input has " + std::to_string(n) + " images");
  const int64_t per = x.shape[1] * x.shape[2] * x.shape[3];
  std::vector<int64_t> shape = {batch, x.shape[1], x.shape[2], x.shape[3]};
  std::vector<float> logits;
  for (int64_t i = 0; i < n; i += batch) {
    auto out = backend->run(x.data.data() + i * per, shape);
    logits.insert(logits.end(), out.begin(), out.end());
  }
  const int64_t classes = static_cast<int64_t>(logits.size()) / n;
  for (int64_t i = 0; i < n; ++i) {
    const float* l = logits.data() + i * classes;
    std::vector<int64_t> idx(classes);
    for (int64_t k = 0; k < classes; ++k) idx[k] = k;
    int64_t k = std::min<int64_t>(o.top_k, classes);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) { return l[a] > l[b]; });
    double mx = l[idx[0]], z = 0;
    for (int64_t j = 0; j < classes; ++j) z += std::exp(l[j] - mx);
    std::printf("image %lld:", static_cast<long long>(i));
    for (int64_t j = 0; j < k; ++j) {
      const std::string name = (c.present && idx[j] < static_cast<int64_t>(c.classes.size())) ? c.classes[idx[j]] : "";
      std::printf(" %lld %s %.4f%s", static_cast<long long>(idx[j]), name.c_str(), std::exp(l[idx[j]] - mx) / z, j + 1 < k ? "," : "");
    }
    std::printf("\n");
  }
  if (!o.logits_out.empty()) ep::write_npy(o.logits_out, {n, classes}, logits);
  if (o.repetitions > 0) {  // the profiler's method: warm-up, passes x repetitions, min of pass medians
    for (int i = 0; i < o.warmup; ++i) backend->run(x.data.data(), shape);
    std::vector<double> all, medians;
    for (int p = 0; p < o.passes; ++p) {
      std::vector<double> t;
      for (int r = 0; r < o.repetitions; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        backend->run(x.data.data(), shape);
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      medians.push_back(median(t));
      all.insert(all.end(), t.begin(), t.end());
    }
    std::printf("latency (%s, batch %lld, %d thread%s%s): median %.4f ms (min of %d pass medians), p10 %.4f ms, p90 %.4f ms, min %.4f ms, %zu runs\n",
                backend->name().c_str(), static_cast<long long>(batch), threads, threads == 1 ? "" : "s",
                threads == 1 ? "" : (spinning ? ", spinning on" : ", spinning off"), *std::min_element(medians.begin(), medians.end()),
                o.passes, percentile(all, 10), percentile(all, 90), *std::min_element(all.begin(), all.end()), all.size());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "edgeprune-run: error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    std::cerr << "edgeprune-run: error: " << msg.substr(0, msg.find('\n')) << "\n";
    return 1;
  }
}
