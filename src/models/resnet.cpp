#include "ddtrain/models/resnet.hpp"

#include "ddtrain/error.hpp"
#include "ddtrain/flat_parameters.hpp"
#include "ddtrain/models.hpp"

namespace ddtrain {

std::string ResNetOptions::validate() const {
  if (inputs < 1 || outputs < 1) return "ResNet inputs and outputs must be >= 1";
  if (depth < 1) return "depth must be >= 1, got " + std::to_string(depth);
  if (width < 1) return "width must be >= 1, got " + std::to_string(width);
  return "";
}

ResNetImpl::ResNetImpl(ResNetOptions options) : options_(std::move(options)) {
  require_valid(options_.validate());
  for (int64_t k = 0; k < options_.depth; ++k) {
    auto unit = register_module("unit" + std::to_string(k), std::make_shared<torch::nn::Module>());
    const int64_t in = k == 0 ? options_.inputs : options_.width;
    units_.push_back(unit->register_module("linear", torch::nn::Linear(in, options_.width)));
    // Registered after the last unit's own Linear, so the unit's parameters stay contiguous.
    if (k + 1 == options_.depth)
      output_ = unit->register_module("output", torch::nn::Linear(options_.width, options_.outputs));
  }
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) {
  torch::Tensor h = activate(apply_linear(units_[0], x), options_.activation);
  for (size_t k = 1; k < units_.size(); ++k) h = h + activate(apply_linear(units_[k], h), options_.activation);
  return apply_linear(output_, h);
}

// The module tree already groups each unit's parameters under its top-level child.
std::string resnet_layer_of(const std::string& parameter_name) {
  return top_level_layer(parameter_name);
}

}  // namespace ddtrain
