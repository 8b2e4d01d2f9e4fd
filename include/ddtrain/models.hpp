#pragma once
// The networks ddtrain ships. Each exposes `layer_of`, the mapping of its parameter names to
// the layers that parameter decomposition works on.
#include <torch/torch.h>

#include <string>

#include "ddtrain/flat_parameters.hpp"

namespace ddtrain {

/// Activation by name: "tanh" (default), "relu", "sigmoid", "sin", "gelu", "softplus".
torch::Tensor activate(const torch::Tensor& x, const std::string& name);
void check_activation(const std::string& name);  // throws InvalidArgument

struct FullyConnectedOptions {
  int64_t inputs = 1;
  int64_t outputs = 1;
  int64_t depth = 3;      ///< hidden layers
  int64_t width = 20;     ///< neurons per hidden layer
  std::string activation = "tanh";
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

}  // namespace ddtrain
