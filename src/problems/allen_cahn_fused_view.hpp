#pragma once
// The raw-pointer view (ddtrain/cuda/fused_network_view.hpp) of a FusedTanhNetwork's parameters
// and the point options of FusedAllenCahnOptions: what the CUDA kernels of the fused loss and
// their host executor read. Internal to the library and its tests.
#include <torch/torch.h>

#include <vector>

#include "ddtrain/cuda/fused_network_view.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/problems/allen_cahn_fused.hpp"

namespace ddtrain::detail {

/// The view of `network` over `parameters`: FusedAllenCahnLoss::parameters()' order (weight_0,
/// bias_0, ..., output weight, output bias), contiguous, of type T, kept alive by the caller.
template <typename T>
gpu::FusedNetworkView<T> fused_network_view(const FusedTanhNetwork& network,
                                            const std::vector<torch::Tensor>& parameters) {
  const size_t layers = network.hidden.size();
  DDTRAIN_CHECK(layers >= 1 && layers <= static_cast<size_t>(gpu::kFusedMaxHiddenLayers) &&
                    parameters.size() == 2 * layers + 2,
                InvalidArgument, "the fused Allen–Cahn kernels need 1 to ", gpu::kFusedMaxHiddenLayers,
                " hidden layers and their weights and biases, got ", layers, " layers and ",
                parameters.size(), " parameters");
  for (const torch::Tensor& p : parameters)
    DDTRAIN_CHECK(p.is_contiguous() && p.scalar_type() == c10::CppTypeToScalarType<T>::value, InvalidArgument,
                  "the fused Allen–Cahn kernels need contiguous parameters of the network's dtype");
  gpu::FusedNetworkView<T> view;
  view.layers = static_cast<int>(layers);
  view.width = static_cast<int>(network.hidden.front()->weight.size(0));
  view.modes = static_cast<int>((network.hidden.front()->weight.size(1) - 1) / 2);
  view.residual = network.residual;
  for (size_t l = 0; l < layers; ++l) {
    view.weight[l] = parameters[2 * l].data_ptr<T>();
    view.bias[l] = parameters[2 * l + 1].data_ptr<T>();
  }
  view.output_weight = parameters[2 * layers].data_ptr<T>();
  view.output_bias = parameters[2 * layers + 1].data_ptr<T>();
  return view;
}

/// The fields of FusedAllenCahnOptions the loss's mathematics uses.
inline gpu::FusedAllenCahnPointOptions fused_point_options(const FusedAllenCahnOptions& options) {
  gpu::FusedAllenCahnPointOptions out;
  out.diffusion = options.diffusion;
  out.reaction = options.reaction;
  out.ic_decay = options.ic_decay;
  out.ic_smoothing = options.ic_smoothing;
  return out;
}

}  // namespace ddtrain::detail
