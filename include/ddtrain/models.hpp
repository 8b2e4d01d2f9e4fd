#pragma once
// The networks ddtrain ships. Each exposes `layer_of`, the mapping of its parameter names to
// the layers that parameter decomposition works on.
#include <torch/torch.h>

#include <string>

#include "ddtrain/flat_parameters.hpp"

namespace ddtrain {

/// The elementwise nonlinearity of a network's hidden layers. Its names ("tanh", "relu",
/// "sigmoid", "sin", "gelu", "softplus") are what the command line, config.ini and summary.json
/// use.
enum class Activation { kTanh, kRelu, kSigmoid, kSin, kGelu, kSoftplus };
/// Throws InvalidArgument "unknown activation 'NAME' (accepted: tanh, relu, ...)".
Activation parse_activation(const std::string& name);
std::string to_string(Activation activation);

/// sigma(x) elementwise.
torch::Tensor activate(const torch::Tensor& x, Activation activation);

/// Random weight factorization (Wang, Wang & Perdikaris 2022, jaxpi's "weight_fact"): a Linear
/// layer's weight is trained as W = diag(exp(s)) V with one log-scale s_i per output unit, drawn
/// from N(mean, std), and V = W_init / exp(s), so the network computes the same function at
/// initialization and only the coordinates the optimizer moves in change.
struct WeightFactorization {
  bool enabled = false;
  double mean = 1.0;  ///< of the log-scales s (jaxpi's Allen-Cahn setting)
  double std = 0.1;
  /// "" or a one-line reason naming the field, after `path` (this struct's place in the options
  /// that hold it, e.g. "weight_factorization.").
  std::string validate(const std::string& path = "") const;
};

/// The weight a Linear layer applies: `weight`, or diag(exp(s)) V when factorize_weights gave it
/// the parameter "log_scale" s (then `weight` holds V).
torch::Tensor effective_weight(const torch::nn::Linear& layer);
/// x W^T + b with the effective weight (bit for bit Linear::forward when not factorized).
torch::Tensor apply_linear(const torch::nn::Linear& layer, const torch::Tensor& x);
/// Factorizes every Linear layer in `module`: registers "log_scale" s ~ N(mean, std) (drawn from
/// `seed`) and sets weight = W exp(-s), so effective_weight is the former weight (to rounding).
/// Call after the initialization and before the parameters are flattened. No-op if !enabled.
void factorize_weights(torch::nn::Module& module, const WeightFactorization& factorization, uint64_t seed);

struct FullyConnectedOptions {
  int64_t inputs = 1;
  int64_t outputs = 1;
  int64_t depth = 3;      ///< hidden layers
  int64_t width = 20;     ///< neurons per hidden layer
  Activation activation = Activation::kTanh;
};

/// Plain fully connected network: depth hidden layers + a linear output layer. Layers are the
/// registered children "layer0", ..., "layer<depth>" (the last is the output layer).
class FullyConnectedImpl : public torch::nn::Module {
 public:
  explicit FullyConnectedImpl(FullyConnectedOptions options);
  torch::Tensor forward(torch::Tensor x);
  const FullyConnectedOptions& options() const { return options_; }
  std::vector<torch::nn::Linear>& linears() { return linears_; }

 private:
  FullyConnectedOptions options_;
  std::vector<torch::nn::Linear> linears_;
};
TORCH_MODULE(FullyConnected);

/// The "modified MLP" of Wang, Teng & Perdikaris (2021) as jaxpi builds it: two encoders
/// U = sigma(W_u x + b_u), V = sigma(W_v x + b_v) and depth gated layers
/// h <- z * U + (1 - z) * V with z = sigma(W_l h + b_l) (h = x before the first), then a linear
/// output. Children: "encoder_u", "encoder_v", "layer0" .. "layer<depth-1>", "output".
class ModifiedMlpImpl : public torch::nn::Module {
 public:
  explicit ModifiedMlpImpl(FullyConnectedOptions options);
  torch::Tensor forward(torch::Tensor x);
  const FullyConnectedOptions& options() const { return options_; }
  const torch::nn::Linear& encoder_u() const { return encoder_u_; }
  const torch::nn::Linear& encoder_v() const { return encoder_v_; }
  const std::vector<torch::nn::Linear>& gates() const { return gates_; }
  const torch::nn::Linear& output() const { return output_; }

 private:
  FullyConnectedOptions options_;
  torch::nn::Linear encoder_u_{nullptr}, encoder_v_{nullptr}, output_{nullptr};
  std::vector<torch::nn::Linear> gates_;
};
TORCH_MODULE(ModifiedMlp);

}  // namespace ddtrain
