#include "ddtrain/flat_parameters.hpp"

#include <unordered_map>

#include "ddtrain/error.hpp"

namespace ddtrain {

std::string top_level_layer(const std::string& parameter_name) {
  return parameter_name.substr(0, parameter_name.find('.'));
}

namespace {
bool intersects(const Range& r, const std::vector<Range>& active) {
  for (const auto& a : active)
    if (r.begin < a.end && a.begin < r.end) return true;
  return false;
}
}  // namespace

FlatParameters::FlatParameters(torch::nn::Module& module, LayerOf layer_of) : module_(module) {
  torch::NoGradGuard no_grad;
  std::unordered_map<std::string, int> layer_index;
  int64_t total = 0;
  torch::TensorOptions options;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const torch::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    if (parameters_.empty()) {
      options = p.options();
    } else {
      DDTRAIN_CHECK(p.dtype() == options.dtype() && p.device() == options.device(),
                    InvalidArgument, "parameter '", item.key(),
                    "' has another dtype or device than the first parameter; call module->to() first");
    }
    const std::string layer = layer_of(item.key());
    auto found = layer_index.find(layer);
    if (found == layer_index.end()) {
      found = layer_index.emplace(layer, static_cast<int>(layers_.size())).first;
      layers_.push_back({layer, {total, total}});
    }
    DDTRAIN_CHECK(found->second == static_cast<int>(layers_.size()) - 1, InvalidArgument,
                  "parameters of layer '", layer, "' are not registered consecutively (at '",
                  item.key(), "')");
    const int64_t n = p.numel();
    entries_.push_back({item.key(), {total, total + n}, p.sizes().vec(), found->second});
    parameters_.push_back(p);
    total += n;
    layers_.back().range.end = total;
  }
  DDTRAIN_CHECK(total > 0, InvalidArgument, "the module has no trainable parameters");

  values_ = torch::empty({total}, options);
  gradients_ = torch::zeros({total}, options);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Range& r = entries_[i].range;
    torch::Tensor slot = values_.narrow(0, r.begin, r.size());
    slot.copy_(parameters_[i].reshape(-1));
    parameters_[i].set_data(slot.view(entries_[i].shape));
  }
  attach_gradient_views();
}

void FlatParameters::attach_gradient_views() {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Range& r = entries_[i].range;
    parameters_[i].mutable_grad() = gradients_.narrow(0, r.begin, r.size()).view(entries_[i].shape);
  }
}

void FlatParameters::zero_gradients() { gradients_.zero_(); }

bool FlatParameters::ensure_gradient_views() {
  bool replaced = false;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Range& r = entries_[i].range;
    torch::Tensor& grad = parameters_[i].mutable_grad();
    torch::Tensor slot = gradients_.narrow(0, r.begin, r.size());
    if (!grad.defined()) {
      slot.zero_();
    } else if (grad.data_ptr() != slot.data_ptr()) {
      slot.copy_(grad.reshape(-1));
      replaced = true;
    } else {
      continue;
    }
    grad = slot.view(entries_[i].shape);
  }
  return replaced;
}

void FlatParameters::set_trainable(const std::vector<Range>& active) {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const bool on = active.empty() || intersects(entries_[i].range, active);
    if (parameters_[i].requires_grad() != on) parameters_[i].requires_grad_(on);
  }
}

std::vector<bool> FlatParameters::trainable_flags() const {
  std::vector<bool> flags;
  for (const torch::Tensor& p : parameters_) flags.push_back(p.requires_grad());
  return flags;
}

void FlatParameters::set_trainable_flags(const std::vector<bool>& flags) {
  DDTRAIN_CHECK(flags.size() == parameters_.size(), InvalidArgument, "set_trainable_flags: ",
                flags.size(), " flags for ", parameters_.size(), " parameters");
  for (size_t i = 0; i < parameters_.size(); ++i)
    if (parameters_[i].requires_grad() != flags[i]) parameters_[i].requires_grad_(flags[i]);
}

}  // namespace ddtrain
