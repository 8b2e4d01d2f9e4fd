// The per-point functions of the fused Allen–Cahn CUDA kernels (src/cuda/allen_cahn_point_math.hpp)
// run by their host executor (src/cuda/fused_allen_cahn_host.hpp) equal FusedAllenCahnLoss: loss,
// every gradient entry and the residuals, for ResNets and fully connected tanh networks, K = 1
// and 2 Fourier modes, with and without point weights, ic_decay, ic_smoothing and scale != 1.
// The CUDA kernels themselves are compared with the host executor in tests/cuda (on a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../../src/cuda/fused_allen_cahn_host.hpp"
#include "../../src/problems/allen_cahn_carrier.hpp"
#include "../../src/problems/allen_cahn_fused_view.hpp"
#include "ddtrain/models.hpp"
#include "ddtrain/models/resnet.hpp"
#include "ddtrain/problems/allen_cahn_fused.hpp"

namespace ddtrain {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// (n, 2) points: x in [-1, 1], t in [0, 1], with t = 0 exactly and x near the corners x = +-1.
torch::Tensor test_points(int64_t n) {
  torch::Tensor xt = torch::rand({n, 2}, kF64);
  xt.select(1, 0).mul_(2).sub_(1);
  xt[0][1] = 0.0;
  xt[1][0] = 0.999;
  xt[2][0] = -0.9995;
  xt[3][0] = 1.0;
  return xt;
}

struct Case {
  std::string name;
  FusedAllenCahnOptions options;
  double scale;
  bool weighted;
};

std::vector<Case> cases() {
  FusedAllenCahnOptions plain;
  plain.diffusion = 0.01;
  plain.reaction = 5.0;
  plain.chunk = 50;
  FusedAllenCahnOptions decay = plain;
  decay.ic_decay = 10.0;
  FusedAllenCahnOptions smoothing = plain;
  smoothing.diffusion = 1e-4;
  smoothing.ic_smoothing = true;
  FusedAllenCahnOptions both = smoothing;
  both.ic_decay = 10.0;
  return {{"plain", plain, 1.0, false},
          {"weighted, scale 0.37", plain, 0.37, true},
          {"ic_decay 10", decay, 1.0 / 157, false},
          {"ic_smoothing", smoothing, 2.5, false},
          {"ic_decay 10, ic_smoothing, weighted", both, 0.01, true}};
}

/// Every entry of `actual` within 1e-12 relative of `expected`.
void expect_entries_close(const std::vector<double>& actual, const torch::Tensor& expected,
                          const std::string& what) {
  const torch::Tensor e = expected.reshape({-1}).contiguous();
  ASSERT_EQ(static_cast<int64_t>(actual.size()), e.numel()) << what;
  const double* ep = e.data_ptr<double>();
  int reported = 0;
  for (size_t k = 0; k < actual.size(); ++k) {
    const double tolerance = 1e-12 * std::abs(ep[k]);
    if (std::abs(actual[k] - ep[k]) > tolerance && reported++ < 5)
      ADD_FAILURE() << what << ": entry " << k << " is " << actual[k] << ", expected " << ep[k]
                    << " (relative difference " << std::abs(actual[k] - ep[k]) / std::abs(ep[k]) << ")";
  }
}

/// The host executor on `network` equals FusedAllenCahnLoss for every case.
void expect_host_executor_equals_fused_loss(const FusedTanhNetwork& network, const std::string& model) {
  torch::manual_seed(11);
  const int64_t n = 157;  // a full tile of 128 points and a partial one
  const torch::Tensor points = test_points(n);
  const torch::Tensor point_weights = torch::rand({n}, kF64) + 0.5;
  for (const Case& c : cases()) {
    const std::string what = model + ", " + c.name;
    FusedAllenCahnLoss fused(network, c.options);
    const torch::Tensor w = c.weighted ? point_weights : torch::Tensor();
    const FusedAllenCahnLoss::Result expected = fused.evaluate(points, c.scale, true, w);
    const torch::Tensor expected_residuals = fused.residuals(points);

    const std::vector<torch::Tensor> parameters = fused.parameters();
    const gpu::FusedNetworkView<double> view = detail::fused_network_view<double>(network, parameters);
    const int64_t count = gpu::detail::parameter_count(view);
    int64_t numel = 0;
    for (const torch::Tensor& p : parameters) numel += p.numel();
    ASSERT_EQ(count, numel) << what;
    std::vector<double> gradient(static_cast<size_t>(count), -1.0), residuals(static_cast<size_t>(n), -1.0);
    double loss = -1;
    gpu::fused_allen_cahn_host(view, detail::fused_point_options(c.options), points.data_ptr<double>(),
                               c.weighted ? point_weights.data_ptr<double>() : nullptr, n, c.scale, true,
                               &loss, gradient.data(), residuals.data());
    EXPECT_NEAR(loss, expected.loss, 1e-12 * expected.loss) << what;
    std::vector<torch::Tensor> flat;
    for (const torch::Tensor& g : expected.gradients) flat.push_back(g.reshape({-1}));
    expect_entries_close(gradient, torch::cat(flat), what + ": gradient");
    expect_entries_close(residuals, expected_residuals, what + ": residuals");

    // Loss only: the same loss, the gradient buffer untouched.
    double loss_only = -1;
    gpu::fused_allen_cahn_host(view, detail::fused_point_options(c.options), points.data_ptr<double>(),
                               c.weighted ? point_weights.data_ptr<double>() : nullptr, n, c.scale, false,
                               &loss_only, nullptr, nullptr);
    EXPECT_EQ(loss_only, loss) << what;
  }
}

TEST(FusedAllenCahnKernels, HostExecutorEqualsFusedLossForResNets) {
  for (int64_t modes : {1, 2}) {
    torch::manual_seed(5 + modes);
    ResNet resnet(ResNetOptions{2 * modes + 1, 1, 3, 8, Activation::kTanh});
    resnet->to(torch::kFloat64);
    std::optional<FusedTanhNetwork> network = FusedTanhNetwork::of(*resnet);
    ASSERT_TRUE(network.has_value());
    expect_host_executor_equals_fused_loss(*network, "resnet 3 x 8, K = " + std::to_string(modes));
  }
}

TEST(FusedAllenCahnKernels, HostExecutorEqualsFusedLossForFullyConnectedNetworks) {
  for (int64_t modes : {1, 2}) {
    torch::manual_seed(7 + modes);
    FullyConnected fc(FullyConnectedOptions{2 * modes + 1, 1, 3, 6, Activation::kTanh});
    fc->to(torch::kFloat64);
    std::optional<FusedTanhNetwork> network = FusedTanhNetwork::of(*fc);
    ASSERT_TRUE(network.has_value());
    expect_host_executor_equals_fused_loss(*network, "fc 3 x 6, K = " + std::to_string(modes));
  }
}

TEST(FusedAllenCahnKernels, HostExecutorInFloat32IsCloseToTheFusedLoss) {
  torch::manual_seed(3);
  ResNet resnet(ResNetOptions{3, 1, 3, 8, Activation::kTanh});
  std::optional<FusedTanhNetwork> network = FusedTanhNetwork::of(*resnet);
  ASSERT_TRUE(network.has_value());
  const torch::Tensor points = test_points(200).to(torch::kFloat32);
  FusedAllenCahnOptions options;
  options.diffusion = 1e-4;
  options.ic_decay = 10.0;
  options.ic_smoothing = true;
  FusedAllenCahnLoss fused(*network, options);
  const FusedAllenCahnLoss::Result expected = fused.evaluate(points, 0.5, true);
  const std::vector<torch::Tensor> parameters = fused.parameters();
  const gpu::FusedNetworkView<float> view = detail::fused_network_view<float>(*network, parameters);
  std::vector<float> gradient(static_cast<size_t>(gpu::detail::parameter_count(view)));
  float loss = 0;
  gpu::fused_allen_cahn_host(view, detail::fused_point_options(options), points.data_ptr<float>(), nullptr, 200,
                             0.5, true, &loss, gradient.data(), nullptr);
  EXPECT_NEAR(loss, expected.loss, 1e-5 * expected.loss);
  std::vector<torch::Tensor> flat;
  for (const torch::Tensor& g : expected.gradients) flat.push_back(g.reshape({-1}));
  const torch::Tensor e = torch::cat(flat);
  const torch::Tensor a = torch::from_blob(gradient.data(), {e.numel()}, torch::kFloat32);
  EXPECT_LT((a - e).norm().item<double>(), 1e-4 * e.norm().item<double>());
}

TEST(FusedAllenCahnKernels, NoPointsGiveZeroLossAndGradient) {
  torch::manual_seed(4);
  FullyConnected fc(FullyConnectedOptions{3, 1, 2, 4, Activation::kTanh});
  fc->to(torch::kFloat64);
  const FusedTanhNetwork network = *FusedTanhNetwork::of(*fc);
  FusedAllenCahnLoss fused(network, {});
  const std::vector<torch::Tensor> parameters = fused.parameters();
  const gpu::FusedNetworkView<double> view = detail::fused_network_view<double>(network, parameters);
  std::vector<double> gradient(static_cast<size_t>(gpu::detail::parameter_count(view)), -1.0);
  double loss = -1;
  gpu::fused_allen_cahn_host(view, {}, static_cast<const double*>(nullptr), nullptr, 0, 1.0, true, &loss,
                             gradient.data(), nullptr);
  EXPECT_EQ(loss, 0.0);
  for (double g : gradient) EXPECT_EQ(g, 0.0);
}

TEST(FusedAllenCahnKernels, InvalidViewIsRejectedWithItsReason) {
  gpu::FusedNetworkView<double> view;  // no layers
  double loss = 0;
  try {
    gpu::fused_allen_cahn_host(view, {}, static_cast<const double*>(nullptr), nullptr, 0, 1.0, false, &loss,
                               nullptr, nullptr);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("hidden layers"), std::string::npos) << e.what();
  }
}

TEST(FusedAllenCahnKernels, DeviceCornerFormulasEqualTheCarriers) {
  for (double nu : {1e-4, 0.01}) {
    for (double x : {-1.0, -0.9995, -0.99, -0.5, 0.0, 0.3, 0.99, 0.9999, 1.0}) {
      for (double t : {0.0, 1e-13, 1e-6, 0.01, 0.5, 1.0}) {
        const detail::CornerJet<double> expected = detail::smoothed_corner<double>(x, t, nu);
        const gpu::detail::PointJet<double> actual = gpu::detail::smoothed_corner<double>(x, t, nu);
        const std::string what = "x " + std::to_string(x) + " t " + std::to_string(t) + " nu " + std::to_string(nu);
        EXPECT_EQ(actual.value, expected.value) << what;
        EXPECT_EQ(actual.x, expected.x) << what;
        EXPECT_EQ(actual.t, expected.t) << what;
        EXPECT_EQ(actual.xx, expected.xx) << what;
      }
    }
  }
}

// With a CUDA LibTorch, FusedAllenCahnLoss runs CUDA points with the CUDA kernels
// (src/problems/allen_cahn_fused_cuda.cpp): the same loss, gradients and residuals as on the CPU,
// through evaluate() and through autograd. Skips without a CUDA device (and a CUDA LibTorch).
TEST(FusedAllenCahnOnDevice, CudaTensorsGiveTheCpuLossGradientsAndResiduals) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (or a LibTorch without CUDA)";
  torch::manual_seed(21);
  ResNet resnet(ResNetOptions{5, 1, 3, 8, Activation::kTanh});
  resnet->to(torch::kFloat64);
  const int64_t n = 300;
  const torch::Tensor points = test_points(n);
  const torch::Tensor point_weights = torch::rand({n}, kF64) + 0.5;
  FusedAllenCahnOptions options;
  options.diffusion = 1e-4;
  options.ic_decay = 10.0;
  options.ic_smoothing = true;
  FusedAllenCahnLoss cpu(*FusedTanhNetwork::of(*resnet), options);
  const FusedAllenCahnLoss::Result expected = cpu.evaluate(points, 0.25, true, point_weights);
  const torch::Tensor expected_residuals = cpu.residuals(points);

  ResNet on_device(ResNetOptions{5, 1, 3, 8, Activation::kTanh});
  on_device->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < resnet->parameters().size(); ++i) on_device->parameters()[i].copy_(resnet->parameters()[i]);
  }
  on_device->to(torch::kCUDA);
  FusedAllenCahnLoss gpu(*FusedTanhNetwork::of(*on_device), options);
  const torch::Tensor device_points = points.to(torch::kCUDA), device_weights = point_weights.to(torch::kCUDA);
  const FusedAllenCahnLoss::Result actual = gpu.evaluate(device_points, 0.25, true, device_weights);
  EXPECT_NEAR(actual.loss, expected.loss, 1e-12 * expected.loss);
  ASSERT_EQ(actual.gradients.size(), expected.gradients.size());
  for (size_t i = 0; i < expected.gradients.size(); ++i) {
    EXPECT_TRUE(actual.gradients[i].is_cuda()) << i;
    const torch::Tensor a = actual.gradients[i].cpu(), e = expected.gradients[i];
    EXPECT_LE((a - e).abs().max().item<double>(), 1e-12 * e.abs().max().item<double>()) << "parameter " << i;
  }
  const torch::Tensor residuals = gpu.residuals(device_points);
  EXPECT_TRUE(residuals.is_cuda());
  EXPECT_LE((residuals.cpu() - expected_residuals).abs().max().item<double>(),
            1e-12 * expected_residuals.abs().max().item<double>());

  // Through autograd: the loss is a CUDA tensor, backward() fills the parameters' gradients.
  const torch::Tensor loss = gpu(device_points, 0.25, device_weights);
  EXPECT_TRUE(loss.is_cuda());
  loss.backward();
  const std::vector<torch::Tensor> parameters = gpu.parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    ASSERT_TRUE(parameters[i].grad().defined()) << i;
    const torch::Tensor e = expected.gradients[i];
    EXPECT_LE((parameters[i].grad().cpu() - e).abs().max().item<double>(), 1e-12 * e.abs().max().item<double>())
        << "parameter " << i;
  }
}

}  // namespace
}  // namespace ddtrain
