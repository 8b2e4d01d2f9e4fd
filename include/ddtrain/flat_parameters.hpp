#pragma once
/// @file
/// FlatParameters: every trainable parameter of a module becomes a view into ONE contiguous
/// tensor, and every gradient a view into ONE contiguous gradient tensor. All optimizer vector
/// algebra and all collectives work on these two tensors.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace ddtrain {

/// A half-open index range [begin, end) into the flat parameter vector.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const Range& o) const { return begin == o.begin && end == o.end; }
};

/// One parameter tensor of the module and where it lives in the flat vector.
struct ParameterEntry {
  std::string name;  ///< dotted name as in `module.named_parameters()`
  Range range;
  std::vector<int64_t> shape;
  int layer = 0;  ///< index into FlatParameters::layers()
};

/// A layer: the unit of parameter decomposition (a group of parameter tensors, contiguous).
struct Layer {
  std::string name;
  Range range;
};

/// Maps a parameter name to its layer name. The default: the first component of the dotted
/// name, i.e. the registered top-level child module that owns it.
using LayerOf = std::function<std::string(const std::string& parameter_name)>;
std::string top_level_layer(const std::string& parameter_name);

/// One module's trainable parameters and gradients as two contiguous flat tensors.
class FlatParameters {
 public:
  /// Re-points every trainable parameter of `module` into one flat tensor (values are kept).
  /// Parameters must all share one dtype and device (call module->to(...) first). Parameters of
  /// one layer must be registered consecutively (true for every sequential network).
  explicit FlatParameters(torch::nn::Module& module, LayerOf layer_of = top_level_layer);

  FlatParameters(const FlatParameters&) = delete;
  FlatParameters& operator=(const FlatParameters&) = delete;

  /// The flat parameter vector (1-D); writes are seen by the module.
  torch::Tensor& values() { return values_; }
  const torch::Tensor& values() const { return values_; }
  /// The flat gradient vector (1-D); backward() accumulates into it.
  torch::Tensor& gradients() { return gradients_; }
  int64_t size() const { return values_.numel(); }
  torch::TensorOptions options() const { return values_.options(); }

  const std::vector<ParameterEntry>& entries() const { return entries_; }
  const std::vector<Layer>& layers() const { return layers_; }
  torch::nn::Module& module() { return module_; }

  /// Zeroes the flat gradient in place (keeps the views).
  void zero_gradients();
  /// Restores the gradient views if autograd replaced a parameter's .grad (returns true then).
  bool ensure_gradient_views();
  /// Turns gradient computation on only for parameters that intersect `active` (all if empty).
  void set_trainable(const std::vector<Range>& active);
  /// Each parameter's requires_grad, in entries() order.
  std::vector<bool> trainable_flags() const;
  /// Sets each parameter's requires_grad from `flags` (as trainable_flags() returns them).
  void set_trainable_flags(const std::vector<bool>& flags);

 private:
  void attach_gradient_views();

  torch::nn::Module& module_;
  std::vector<torch::Tensor> parameters_;
  std::vector<ParameterEntry> entries_;
  std::vector<Layer> layers_;
  torch::Tensor values_;
  torch::Tensor gradients_;
};

}  // namespace ddtrain
