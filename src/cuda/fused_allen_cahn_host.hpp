#pragma once
// The host executor of the fused Allen–Cahn kernels: the per-point functions of
// allen_cahn_point_math.hpp run in plain C++ loops, in the order the CUDA kernels
// (fused_allen_cahn.cu) run them (forward per point, backward per point, per-tile sums, the
// sum over the tiles). It is the reference the CUDA kernels are tested against and is itself
// tested against FusedAllenCahnLoss (tests/unit/test_fused_allen_cahn_kernels.cpp). No LibTorch,
// no CUDA; serial (a test reference, not a fast path).
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "allen_cahn_point_math.hpp"

namespace ddtrain::gpu {

/// Evaluates loss = scale * sum_i w_i r_i^2 over the n points (x, t interleaved) with point
/// weights `weights` (null: all 1) into loss_out[0], and, if `with_gradient`, its gradient with
/// respect to every parameter (flat, in the order weight_0, bias_0, ..., output weight, output
/// bias: parameter_count values) into gradient_out; the residuals r_i into residuals_out when
/// it is not null. Host pointers throughout. Throws std::invalid_argument for an invalid view.
template <typename T>
void fused_allen_cahn_host(const FusedNetworkView<T>& network, const FusedAllenCahnPointOptions& options,
                           const detail::not_deduced_t<T>* points, const detail::not_deduced_t<T>* weights,
                           int64_t n, double scale, bool with_gradient, detail::not_deduced_t<T>* loss_out,
                           detail::not_deduced_t<T>* gradient_out, detail::not_deduced_t<T>* residuals_out) {
  const std::string problem = detail::check_view(network);
  if (!problem.empty()) throw std::invalid_argument(problem);
  if (n < 0) throw std::invalid_argument("the fused Allen-Cahn kernels need n >= 0 points");
  std::vector<T> values(static_cast<size_t>(detail::workspace_values(network, n)));
  std::vector<double> doubles(static_cast<size_t>(detail::workspace_doubles(n)));
  const detail::FusedLayout<T> ws = detail::make_layout(network, n, values.data(), doubles.data());
  for (int64_t i = 0; i < n; ++i)
    detail::forward_point(network, options, scale, points, weights, residuals_out, ws, i);
  if (with_gradient)
    for (int64_t i = 0; i < n; ++i) detail::backward_point(network, ws, i);
  const int64_t parameters = with_gradient ? detail::parameter_count(network) : 0;
  const int64_t tiles = detail::tile_count(n);
  for (int64_t k = 0; k < tiles; ++k)
    for (int64_t p = 0; p <= parameters; ++p) detail::reduce_tile(network, ws, parameters, p, k);
  for (int64_t p = 0; p <= parameters; ++p) detail::reduce_tiles(ws, parameters, p, scale, loss_out, gradient_out);
}

}  // namespace ddtrain::gpu
