// The CUDA kernels of the fused Allen–Cahn loss (ddtrain/cuda/fused_allen_cahn.hpp) equal their
// host executor (src/cuda/fused_allen_cahn_host.hpp, itself tested against FusedAllenCahnLoss in
// tests/unit/test_fused_allen_cahn_kernels.cpp) on random networks and points: loss, gradient
// and residuals in float64 to 1e-12 relative, float32 closely; the same bits for every
// threads_per_block; a loss-only call; no points; the CUDA graph of the launches (replay and
// recapture). Torch-free: the CUDA runtime and GoogleTest.
// Skips with the reason when no CUDA device is usable.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../../src/cuda/fused_allen_cahn_host.hpp"
#include "ddtrain/cuda/fused_allen_cahn.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain::gpu {
namespace {

/// "" when a CUDA device is usable, else why not.
std::string no_device_reason() {
  int count = 0;
  const cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: cudaGetDeviceCount: ") + cudaGetErrorString(code) + " (" +
           cudaGetErrorName(code) + ")";
  }
  if (count == 0) return "no CUDA device: none is visible (check CUDA_VISIBLE_DEVICES)";
  return "";
}

#define SKIP_WITHOUT_DEVICE()                                  \
  do {                                                         \
    const std::string reason = no_device_reason();             \
    if (!reason.empty()) GTEST_SKIP() << reason;               \
  } while (0)

/// A device copy of a host vector, freed at scope exit.
template <typename T>
class DeviceVector {
 public:
  explicit DeviceVector(const std::vector<T>& host) : size_(host.size()) {
    EXPECT_EQ(cudaMalloc(&data_, sizeof(T) * (size_ > 0 ? size_ : 1)), cudaSuccess);
    if (size_ > 0) {
      EXPECT_EQ(cudaMemcpy(data_, host.data(), sizeof(T) * size_, cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  explicit DeviceVector(size_t size, T fill) : DeviceVector(std::vector<T>(size, fill)) {}
  ~DeviceVector() { cudaFree(data_); }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;
  T* get() const { return data_; }
  std::vector<T> host() const {
    std::vector<T> out(size_);
    if (size_ > 0) {
      EXPECT_EQ(cudaMemcpy(out.data(), data_, sizeof(T) * size_, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return out;
  }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

/// A random network's parameters (host), its host view and its device view.
template <typename T>
struct RandomNetwork {
  std::vector<std::vector<T>> parameters;  // weight_0, bias_0, ..., output weight, output bias
  std::vector<std::unique_ptr<DeviceVector<T>>> device;
  FusedNetworkView<T> host_view, device_view;

  RandomNetwork(int layers, int width, int modes, bool residual, std::mt19937& rng) {
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    host_view.layers = device_view.layers = layers;
    host_view.width = device_view.width = width;
    host_view.modes = device_view.modes = modes;
    host_view.residual = device_view.residual = residual;
    for (int l = 0; l <= layers; ++l) {
      const int inputs = l == 0 ? 2 * modes + 1 : width, outputs = l == layers ? 1 : width;
      const double bound = 1.0 / std::sqrt(static_cast<double>(inputs));
      std::vector<T> weight(static_cast<size_t>(outputs) * inputs), bias(static_cast<size_t>(outputs));
      for (T& v : weight) v = static_cast<T>(bound * uniform(rng));
      for (T& v : bias) v = static_cast<T>(bound * uniform(rng));
      parameters.push_back(weight);
      parameters.push_back(bias);
    }
    for (const std::vector<T>& p : parameters) device.push_back(std::make_unique<DeviceVector<T>>(p));
    for (int l = 0; l < layers; ++l) {
      host_view.weight[l] = parameters[2 * l].data();
      host_view.bias[l] = parameters[2 * l + 1].data();
      device_view.weight[l] = device[2 * l]->get();
      device_view.bias[l] = device[2 * l + 1]->get();
    }
    host_view.output_weight = parameters[2 * layers].data();
    host_view.output_bias = parameters[2 * layers + 1].data();
    device_view.output_weight = device[2 * layers]->get();
    device_view.output_bias = device[2 * layers + 1]->get();
  }
};

template <typename T>
std::vector<T> random_points(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<T> xt(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) {
    xt[2 * i] = static_cast<T>(2 * uniform(rng) - 1);
    xt[2 * i + 1] = static_cast<T>(uniform(rng));
  }
  if (n > 1) xt[1] = 0, xt[2] = static_cast<T>(0.9995);  // t = 0 exactly; x near the corner
  return xt;
}

/// The device's loss, gradient and residuals.
template <typename T>
struct DeviceResult {
  T loss = 0;
  std::vector<T> gradient, residuals;
};

template <typename T>
DeviceResult<T> run_device(const RandomNetwork<T>& network, const FusedAllenCahnPointOptions& options,
                           const DeviceVector<T>& points, const detail::not_deduced_t<DeviceVector<T>>* weights,
                           int64_t n, double scale, bool with_gradient, FusedAllenCahnWorkspace& workspace,
                           int threads_per_block) {
  const int64_t count = detail::parameter_count(network.host_view);
  DeviceVector<T> loss(1, T(-1)), gradient(static_cast<size_t>(count), T(-1));
  DeviceVector<T> residuals(static_cast<size_t>(n), T(-1));
  fused_allen_cahn_cuda(network.device_view, options, points.get(), weights ? weights->get() : nullptr, n, scale,
                        with_gradient, loss.get(), gradient.get(), residuals.get(), workspace, nullptr,
                        threads_per_block);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  DeviceResult<T> out;
  out.loss = loss.host()[0];
  out.gradient = gradient.host();
  out.residuals = residuals.host();
  return out;
}

/// Every entry within `tolerance` relative, with a floor of 1e-2 tolerance times the largest
/// entry: the device contracts a * b + c into fused multiply-adds, the host does not, and an
/// entry that is a sum cancelling to far below its terms can differ by more than 1e-12 of itself.
template <typename T>
void expect_close(const std::vector<T>& actual, const std::vector<T>& expected, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double largest = 0;
  for (const T& e : expected) largest = std::max(largest, std::abs(static_cast<double>(e)));
  int reported = 0;
  for (size_t k = 0; k < actual.size(); ++k) {
    const double a = actual[k], e = expected[k];
    if (!(std::abs(a - e) <= tolerance * std::max(std::abs(e), 1e-2 * largest)) && reported++ < 5)
      ADD_FAILURE() << what << ": entry " << k << " is " << a << ", expected " << e;
  }
}

struct Shape {
  int layers, width, modes;
  bool residual;
};

const Shape kShapes[] = {{3, 8, 1, true}, {3, 8, 2, true}, {3, 30, 1, false}, {6, 40, 1, true}, {1, 5, 3, false}};

std::vector<FusedAllenCahnPointOptions> option_sets() {
  FusedAllenCahnPointOptions plain{0.01, 5.0, 0.0, false};
  FusedAllenCahnPointOptions decay{0.01, 5.0, 10.0, false};
  FusedAllenCahnPointOptions smoothing{1e-4, 5.0, 10.0, true};
  return {plain, decay, smoothing};
}

std::string describe(const Shape& s, const FusedAllenCahnPointOptions& o, bool weighted) {
  return std::to_string(s.layers) + " x " + std::to_string(s.width) + " K " + std::to_string(s.modes) +
         (s.residual ? " resnet" : " fc") + " decay " + std::to_string(o.ic_decay) +
         (o.ic_smoothing ? " smoothing" : "") + (weighted ? " weighted" : "");
}

TEST(FusedAllenCahnCudaOnDevice, Float64EqualsTheHostExecutor) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(42);
  FusedAllenCahnWorkspace workspace;
  for (const Shape& shape : kShapes) {
    const RandomNetwork<double> network(shape.layers, shape.width, shape.modes, shape.residual, rng);
    const int64_t n = 1000;  // 7 full tiles and a partial one
    const std::vector<double> xt = random_points<double>(n, rng);
    std::vector<double> w(static_cast<size_t>(n));
    for (double& v : w) v = 0.5 + std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const DeviceVector<double> points(xt), weights(w);
    for (const FusedAllenCahnPointOptions& options : option_sets()) {
      for (bool weighted : {false, true}) {
        const std::string what = describe(shape, options, weighted);
        const double scale = weighted ? 0.37 : 1.0 / static_cast<double>(n);
        const int64_t count = detail::parameter_count(network.host_view);
        std::vector<double> gradient(static_cast<size_t>(count)), residuals(static_cast<size_t>(n));
        double loss = 0;
        fused_allen_cahn_host(network.host_view, options, xt.data(), weighted ? w.data() : nullptr, n, scale, true,
                              &loss, gradient.data(), residuals.data());
        const DeviceResult<double> device =
            run_device(network, options, points, weighted ? &weights : nullptr, n, scale, true, workspace, 128);
        EXPECT_NEAR(device.loss, loss, 1e-12 * loss) << what;
        expect_close(device.gradient, gradient, 1e-12, what + ": gradient");
        expect_close(device.residuals, residuals, 1e-12, what + ": residuals");
      }
    }
  }
}

TEST(FusedAllenCahnCudaOnDevice, Float32IsCloseToTheHostExecutor) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(7);
  FusedAllenCahnWorkspace workspace;
  const RandomNetwork<float> network(4, 20, 1, true, rng);
  const int64_t n = 700;
  const std::vector<float> xt = random_points<float>(n, rng);
  const DeviceVector<float> points(xt);
  const FusedAllenCahnPointOptions options{1e-4, 5.0, 10.0, true};
  std::vector<float> gradient(static_cast<size_t>(detail::parameter_count(network.host_view)));
  float loss = 0;
  fused_allen_cahn_host(network.host_view, options, xt.data(), nullptr, n, 1.0 / n, true, &loss, gradient.data(),
                        nullptr);
  const DeviceResult<float> device = run_device(network, options, points, nullptr, n, 1.0 / n, true, workspace, 128);
  EXPECT_NEAR(device.loss, loss, 1e-4 * loss);
  double diff = 0, norm = 0;
  for (size_t k = 0; k < gradient.size(); ++k) {
    diff += (device.gradient[k] - gradient[k]) * static_cast<double>(device.gradient[k] - gradient[k]);
    norm += gradient[k] * static_cast<double>(gradient[k]);
  }
  EXPECT_LT(std::sqrt(diff), 1e-4 * std::sqrt(norm));
}

TEST(FusedAllenCahnCudaOnDevice, ResultsDoNotDependOnTheLaunchConfiguration) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(3);
  const RandomNetwork<double> network(3, 16, 2, true, rng);
  const int64_t n = 2049;
  const std::vector<double> xt = random_points<double>(n, rng);
  const DeviceVector<double> points(xt);
  const FusedAllenCahnPointOptions options{1e-4, 5.0, 10.0, true};
  FusedAllenCahnWorkspace workspace;
  const DeviceResult<double> first = run_device(network, options, points, nullptr, n, 0.5, true, workspace, 128);
  for (int threads : {32, 64, 256, 1024}) {
    FusedAllenCahnWorkspace fresh;
    const DeviceResult<double> other = run_device(network, options, points, nullptr, n, 0.5, true, fresh, threads);
    EXPECT_EQ(std::memcmp(&other.loss, &first.loss, sizeof(double)), 0) << threads;
    EXPECT_TRUE(other.gradient == first.gradient) << threads;
    EXPECT_TRUE(other.residuals == first.residuals) << threads;
  }
  // The first workspace once more: reused as it is, the same bits.
  const DeviceResult<double> again = run_device(network, options, points, nullptr, n, 0.5, true, workspace, 128);
  EXPECT_TRUE(again.gradient == first.gradient);
}

TEST(FusedAllenCahnCudaOnDevice, LossOnlyAndNoPoints) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(5);
  const RandomNetwork<double> network(2, 6, 1, false, rng);
  const int64_t n = 300;
  const std::vector<double> xt = random_points<double>(n, rng);
  const DeviceVector<double> points(xt);
  const FusedAllenCahnPointOptions options{0.01, 5.0, 0.0, false};
  FusedAllenCahnWorkspace workspace;
  const DeviceResult<double> full = run_device(network, options, points, nullptr, n, 1.0, true, workspace, 128);
  const DeviceResult<double> loss_only = run_device(network, options, points, nullptr, n, 1.0, false, workspace, 128);
  EXPECT_EQ(loss_only.loss, full.loss);
  for (double g : loss_only.gradient) EXPECT_EQ(g, -1.0);  // not written
  const DeviceResult<double> empty = run_device(network, options, points, nullptr, 0, 1.0, true, workspace, 128);
  EXPECT_EQ(empty.loss, 0.0);
  for (double g : empty.gradient) EXPECT_EQ(g, 0.0);
}

TEST(FusedAllenCahnCudaOnDevice, AGraphReplaysTheLaunchesBitForBitAndRecapturesWhenArgumentsChange) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(11);
  RandomNetwork<double> network(3, 16, 1, true, rng);
  const int64_t n = 1500;
  const DeviceVector<double> points(random_points<double>(n, rng));
  const FusedAllenCahnPointOptions options{1e-4, 5.0, 10.0, true};
  const int64_t count = detail::parameter_count(network.host_view);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  FusedAllenCahnWorkspace direct_workspace, graph_workspace;
  FusedAllenCahnGraph graph;
  DeviceVector<double> loss(1, -1.0), gradient(static_cast<size_t>(count), -1.0), residuals(static_cast<size_t>(n), -1.0);
  // The graph's result for (n points, with or without gradient) equals the direct launches'.
  auto expect_graph_equals_direct = [&](int64_t points_used, bool with_gradient, const std::string& what) {
    graph.run(network.device_view, options, points.get(), nullptr, points_used, 0.5, with_gradient, loss.get(),
              gradient.get(), residuals.get(), graph_workspace, stream);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess) << what;
    const DeviceResult<double> direct = run_device(network, options, points, nullptr, points_used, 0.5, with_gradient,
                                                   direct_workspace, 128);
    EXPECT_EQ(std::memcmp(&direct.loss, loss.host().data(), sizeof(double)), 0) << what;
    if (with_gradient) {
      EXPECT_TRUE(gradient.host() == direct.gradient) << what;
    }
    std::vector<double> r = residuals.host();
    r.resize(static_cast<size_t>(points_used));
    std::vector<double> expected = direct.residuals;
    expected.resize(static_cast<size_t>(points_used));
    EXPECT_TRUE(r == expected) << what;
  };
  expect_graph_equals_direct(n, true, "first capture");
  EXPECT_EQ(graph.captures(), 1);
  expect_graph_equals_direct(n, true, "replay");
  // New parameter values written into the same device buffers: replayed, not recaptured.
  for (size_t k = 0; k < network.parameters.size(); ++k) {
    for (double& v : network.parameters[k]) v *= 0.75;
    ASSERT_EQ(cudaMemcpy(network.device[k]->get(), network.parameters[k].data(),
                         sizeof(double) * network.parameters[k].size(), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  expect_graph_equals_direct(n, true, "new parameter values");
  EXPECT_EQ(graph.captures(), 1);
  // Other arguments: captured again.
  expect_graph_equals_direct(n - 700, true, "fewer points");
  EXPECT_EQ(graph.captures(), 2);
  expect_graph_equals_direct(n - 700, false, "loss only");
  EXPECT_EQ(graph.captures(), 3);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// Needs no device: the arguments are checked before any CUDA call.
TEST(FusedAllenCahnCuda, GraphsRefuseTheLegacyDefaultStreamBeforeAnyCudaCall) {
  FusedNetworkView<double> view;
  FusedAllenCahnWorkspace workspace;
  FusedAllenCahnGraph graph;
  double loss = 0;
  EXPECT_THROW(graph.run(view, {}, nullptr, nullptr, 0, 1.0, false, &loss, nullptr, nullptr, workspace, nullptr),
               InvalidArgument);
  EXPECT_EQ(graph.captures(), 0);
}

// Needs no device: the arguments are checked before any CUDA call.
TEST(FusedAllenCahnCuda, InvalidArgumentsThrowBeforeAnyCudaCall) {
  FusedNetworkView<double> view;  // no layers
  FusedAllenCahnWorkspace workspace;
  double* loss = nullptr;
  EXPECT_THROW(fused_allen_cahn_cuda(view, {}, nullptr, nullptr, 0, 1.0, false, loss, nullptr, nullptr, workspace,
                                     nullptr),
               InvalidArgument);
}

}  // namespace
}  // namespace ddtrain::gpu
