#include "ddtrain/error.hpp"
#include "ddtrain/models.hpp"

namespace ddtrain {

void check_activation(const std::string& name) {
  static const char* known[] = {"tanh", "relu", "sigmoid", "sin", "gelu", "softplus"};
  for (const char* k : known)
    if (name == k) return;
  throw InvalidArgument("unknown activation '" + name +
                        "' (accepted: tanh, relu, sigmoid, sin, gelu, softplus)");
}

torch::Tensor activate(const torch::Tensor& x, const std::string& name) {
  if (name == "tanh") return torch::tanh(x);
  if (name == "relu") return torch::relu(x);
  if (name == "sigmoid") return torch::sigmoid(x);
  if (name == "sin") return torch::sin(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "softplus") return torch::softplus(x);
  check_activation(name);
  return x;
}

FullyConnectedImpl::FullyConnectedImpl(FullyConnectedOptions options) : options_(options) {
  DDTRAIN_CHECK(options_.depth >= 1, InvalidArgument, "--depth must be >= 1, got ", options_.depth);
  DDTRAIN_CHECK(options_.width >= 1, InvalidArgument, "--width must be >= 1, got ", options_.width);
  DDTRAIN_CHECK(options_.inputs >= 1 && options_.outputs >= 1, InvalidArgument,
                "network inputs/outputs must be >= 1");
  check_activation(options_.activation);
  int64_t in = options_.inputs;
  for (int64_t l = 0; l <= options_.depth; ++l) {
    const int64_t out = l == options_.depth ? options_.outputs : options_.width;
    linears_.push_back(register_module("layer" + std::to_string(l), torch::nn::Linear(in, out)));
    in = out;
  }
}

torch::Tensor FullyConnectedImpl::forward(torch::Tensor x) {
  for (size_t l = 0; l + 1 < linears_.size(); ++l) x = activate(linears_[l]->forward(x), options_.activation);
  return linears_.back()->forward(x);
}

}  // namespace ddtrain
