#pragma once
// Residual network of the Allen–Cahn seed experiment ("ResNet 6 x 40", tanh):
//
//   h_0 = sigma(W_0 x + b_0)                    lift, inputs -> width
//   h_k = h_{k-1} + sigma(W_k h_{k-1} + b_k)    k = 1 .. depth-1, residual blocks
//   y   = W_out h_{depth-1} + b_out             linear output layer
//
// The `depth` width-`width` units are the layers of parameter decomposition (ALGORITHMS.md §2):
// unit 0 is the lift, units 1..depth-1 the residual blocks, and the output layer belongs to the
// last unit. The module tree says so: children "unit0" .. "unit<depth-1>", each holding a
// Linear "linear", and the last one also the output Linear "output", so every parameter name
// starts with its unit ("unit5.output.weight").
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ddtrain/models.hpp"

namespace ddtrain {

struct ResNetOptions {
  int64_t inputs = 2;               ///< input features, >= 1
  int64_t outputs = 1;              ///< outputs, >= 1
  int64_t depth = 6;                ///< width-`width` units (lift + depth-1 blocks), >= 1
  int64_t width = 40;               ///< neurons per unit, >= 1
  Activation activation = Activation::kTanh;
  std::string validate() const;     ///< "" or a one-line reason naming the field
};

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(ResNetOptions options = {});
  torch::Tensor forward(torch::Tensor x);
  const ResNetOptions& options() const { return options_; }
  /// The unit layers in order: lift first, then the residual blocks.
  const std::vector<torch::nn::Linear>& units() const { return units_; }
  const torch::nn::Linear& output() const { return output_; }

 private:
  ResNetOptions options_;
  std::vector<torch::nn::Linear> units_;
  torch::nn::Linear output_{nullptr};
};
TORCH_MODULE(ResNet);

/// Layer of a ResNet parameter for FlatParameters: its unit ("unit3.linear.bias" -> "unit3",
/// "unit5.output.weight" -> "unit5"), so a ResNet has exactly `depth` layers.
std::string resnet_layer_of(const std::string& parameter_name);

}  // namespace ddtrain
