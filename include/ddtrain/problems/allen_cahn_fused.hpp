#pragma once
// The Allen–Cahn PINN loss with hard constraints and its parameter gradient in one fused,
// cache-blocked pass (CPU, tanh networks): what `--derivatives fused` runs.
//
// The mathematics is that of Taylor mode (ddtrain/models/taylor.hpp): u, u_x, u_t, u_xx are
// pushed forward through the network as four stacked slots, the residual
//   r = u_t - nu u_xx + r (u^3 - u),   u = x^2 cos(pi x) e^{-c t} + t N(cos(k pi x), sin(k pi x), t),
// k = 1..K (K Fourier modes, 2K + 1 inputs),
// is formed and loss = scale * sum_i r_i^2. The difference is how it is executed: the points
// are processed in chunks small enough for every layer's activations to stay in cache; each
// chunk runs forward, forms dloss/dr and backpropagates by hand (the same chain rule autograd
// would apply, written out), accumulating the weight gradients; chunks run in parallel over
// LibTorch's intra-op threads, each thread's BLAS calls single-threaded (the chunk matrices are
// small). The sums are taken over a fixed split of the chunks into at most 64 reduction blocks,
// added in block order: the result is the same, bit for bit, for any number of threads.
// No autograd graph is built: the gradient is computed with the loss and handed to autograd
// through a custom Function, so `loss.backward()` and torch::autograd::grad work as usual. A loss-only evaluation (grad mode
// off, as in a line search) runs the forward part alone. Leading hidden layers whose parameters
// do not require grad (a subdomain solve of preconditioned L-BFGS) cost no backward, and their
// output is cached: the next evaluation with the same points and frozen values starts above
// them (4 x width values per point of memory; the same numbers as recomputing them).
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "ddtrain/models.hpp"
#include "ddtrain/models/resnet.hpp"

namespace ddtrain {

namespace detail {
struct FusedWorkspace;     // one thread's buffers (allen_cahn_fused.cpp)
struct FrozenLayersCache;  // the frozen lower layers' outputs (allen_cahn_fused.cpp)
struct BlockSums;          // one reduction block's loss and gradient sums (allen_cahn_fused.cpp)
struct FusedCudaState;     // the CUDA kernels' workspace (allen_cahn_fused_cuda.hpp)
class FusedLossFunction;   // the custom autograd Function (allen_cahn_fused.cpp)
}

/// The layers of a tanh network as the fused loss walks them.
struct FusedTanhNetwork {
  std::vector<torch::nn::Linear> hidden;  ///< each followed by tanh; the first takes 2K + 1 features
  torch::nn::Linear output{nullptr};      ///< linear output, one unit
  bool residual = false;                  ///< ResNet: h_l = h_{l-1} + tanh(W_l h_{l-1} + b_l), l >= 1

  /// The ResNet's units and output (residual), or the fully connected network's hidden and
  /// output layers; std::nullopt if the network is not fusable (activation other than tanh,
  /// a layer without bias or with factorized weights, input width not 2K + 1 >= 3, output width other than 1,
  /// hidden layers of different widths).
  static std::optional<FusedTanhNetwork> of(ResNetImpl& network);
  static std::optional<FusedTanhNetwork> of(FullyConnectedImpl& network);
};

struct FusedAllenCahnOptions {
  double diffusion = 1e-4;  ///< nu
  double reaction = 5.0;    ///< r
  /// Points per chunk. 256 keeps a ResNet 6 x 40's four slots of pre-activations, activations
  /// and layer outputs (float32) near 1 MiB; measured in bench/RESULTS-allen-cahn.md.
  int64_t chunk = 256;
  double ic_decay = 0.0;  ///< c of the carrier u0(x) e^{-c t} (AllenCahnOptions::ic_decay)
  bool ic_smoothing = false;  ///< the carrier's heat-smoothed corner (AllenCahnOptions::ic_smoothing)
};

/// Evaluates scale * sum_i w_i r_i^2 at points (n, 2) = (x, t) of the network's dtype on the
/// CPU, with constant point weights w_i (1 when not given; causal weighting passes its own).
/// Keeps per-thread work buffers between calls (not thread-safe: one evaluator per caller).
/// In a build with a CUDA LibTorch and the CUDA toolkit, points, weights and parameters on a
/// CUDA device are evaluated there by the CUDA kernels of ddtrain/cuda/fused_allen_cahn.hpp
/// (same mathematics; the loss is read back to the host once per evaluation, frozen lower
/// layers are recomputed, their gradients zero).
class FusedAllenCahnLoss {
 public:
  FusedAllenCahnLoss(FusedTanhNetwork network, FusedAllenCahnOptions options);
  ~FusedAllenCahnLoss();

  /// The loss as a 0-d tensor. When grad mode is on and the parameters require grad, it is
  /// differentiable with respect to them (its gradient is computed here, in the same pass).
  /// Throws InvalidArgument for points that are not (n, 2) CPU tensors of the parameters' dtype.
  /// `point_weights`: (n) of the network's dtype, or undefined for all ones.
  torch::Tensor operator()(const torch::Tensor& points, double scale,
                           const torch::Tensor& point_weights = torch::Tensor());

  /// The loss and the gradients of every parameter (weights and biases of `hidden` in order,
  /// then the output's), without autograd; gradients empty if `with_gradient` is false.
  struct Result {
    double loss = 0;
    std::vector<torch::Tensor> gradients;
  };
  Result evaluate(const torch::Tensor& points, double scale, bool with_gradient,
                  const torch::Tensor& point_weights = torch::Tensor());

  /// The residuals r_i (n), forward only.
  torch::Tensor residuals(const torch::Tensor& points);

  /// The parameters in the order of Result::gradients.
  std::vector<torch::Tensor> parameters() const;

  /// How many frozen lower layers' output is cached (0: none), for the points and values of
  /// the last evaluation that had frozen layers.
  size_t cached_frozen_layers() const;

 private:
  friend class detail::FusedLossFunction;
  /// `lowest_trained` (at most the number of hidden layers): the hidden layers below it do not
  /// require grad (0 = every layer is trained). The backward stops there, and the forward starts
  /// there from the cached output of the frozen layers when the points and those layers' values
  /// are the ones it was computed for (a subdomain solve of preconditioned L-BFGS evaluates many
  /// times with them fixed).
  Result run(const torch::Tensor& points, double scale, bool with_gradient,
             const torch::Tensor& point_weights, const torch::Tensor& residuals_out,
             size_t lowest_trained);
  /// The number of leading hidden layers whose weight and bias do not require grad.
  size_t frozen_layers() const;

  FusedTanhNetwork network_;
  FusedAllenCahnOptions options_;
  std::vector<std::unique_ptr<detail::FusedWorkspace>> workspaces_;  ///< one per intra-op thread
  std::vector<std::unique_ptr<detail::BlockSums>> block_sums_;      ///< one per reduction block
  std::unique_ptr<detail::FrozenLayersCache> frozen_cache_;
  std::unique_ptr<detail::FusedCudaState> cuda_state_;  ///< created by the first CUDA evaluation
};

}  // namespace ddtrain
