#pragma once
// The network of a space-time PINN problem (Allen–Cahn, Burgers, Klein–Gordon): a ResNet, a
// fully connected network or a modified MLP with Xavier-normal weights and zero biases drawn from
// the problem's seed, its forward pass, its Taylor-mode forward pass, and the grid helpers the
// problems' metric and field.csv share.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ddtrain/flat_parameters.hpp"
#include "ddtrain/models.hpp"
#include "ddtrain/models/taylor.hpp"
#include "ddtrain/problems/allen_cahn_fused.hpp"
#include "ddtrain/reference/allen_cahn_reference.hpp"

namespace ddtrain {

/// The network of a PINN problem: ddtrain::ResNet ("resnet"), ddtrain::FullyConnected ("fc") or
/// ddtrain::ModifiedMlp ("modified-mlp"); the names are those of the command line and summaries.
enum class PinnModel { kResNet, kFullyConnected, kModifiedMlp };
/// Throws InvalidArgument "unknown model 'NAME' (accepted: resnet, fc, modified-mlp)".
PinnModel parse_pinn_model(const std::string& name);
std::string to_string(PinnModel model);

struct PinnNetworkOptions {
  int64_t inputs = 2;  ///< input features, >= 1
  PinnModel model = PinnModel::kResNet;
  int64_t depth = 6;                ///< ResNet units / hidden layers, >= 1
  int64_t width = 40;               ///< neurons per layer, >= 1
  Activation activation = Activation::kTanh;
  WeightFactorization weight_factorization;  ///< off by default
};

/// A built network: one scalar output per point.
struct PinnNetwork {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;  ///< (n, inputs) -> (n, 1)
  std::function<SpaceTimeJet(const SpaceTimeJet&)> forward_jet;  ///< Taylor mode (forward_jet)
  LayerOf layer_of = top_level_layer;  ///< the FlatParameters layers (ResNet: its units)
  std::optional<FusedTanhNetwork> fused;  ///< the fused loss's view, for resnet and fc
};

/// Builds the network: Xavier-normal weights and zero biases drawn in float64 from `seed` (so the
/// draw depends on the seed only, not on torch's global generator or the dtype), moved to
/// `device` and `dtype`, then the weight factorization (if enabled) drawn from
/// `factorization_seed`. Throws InvalidArgument for a depth or width < 1.
PinnNetwork make_pinn_network(const PinnNetworkOptions& options, uint64_t seed, uint64_t factorization_seed,
                              torch::Dtype dtype, torch::Device device);

/// The points (x_i, t_j) of a reference grid, row k = i + nx j (the layout of field.u), (nx nt, 2).
torch::Tensor reference_grid_points(const reference::ReferenceField& field, torch::Dtype dtype,
                                    torch::Device device);

/// `u` evaluated on `points` in chunks without a graph, as float64 CPU values of shape (n).
torch::Tensor predict_in_chunks(const std::function<torch::Tensor(const torch::Tensor&)>& u,
                                const torch::Tensor& points);

/// Writes x, t, u_ref, u_pred, error = |u_pred - u_ref| on the reference grid (one row per grid
/// point, header line first) to `path` via `path.tmp` + rename. `prediction` holds nx nt values
/// in the field's layout. Throws IoError, InvalidArgument if the sizes differ.
void write_field_csv(const std::string& path, const reference::ReferenceField& field,
                     const torch::Tensor& prediction);

}  // namespace ddtrain
