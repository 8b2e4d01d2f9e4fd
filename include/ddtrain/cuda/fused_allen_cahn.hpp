#pragma once
/// @file
/// The fused Allen–Cahn PINN loss and its hand-written backward as CUDA kernels on raw device
/// pointers (src/cuda/fused_allen_cahn.cu): the mathematics of FusedAllenCahnLoss
/// (ddtrain/problems/allen_cahn_fused.hpp) for the same tanh networks, one CUDA thread per point,
/// the parameter gradients summed over fixed tiles of points and then over the tiles in a fixed
/// order (no floating-point atomics), so the results do not depend on the launch configuration.
/// Needs the CUDA runtime, not LibTorch; built as the library ddtrain_cuda_kernels when the CUDA
/// toolkit is found (DDTRAIN_WITH_CUDA).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ddtrain/cuda/fused_network_view.hpp"

namespace ddtrain::gpu {

/// Device memory the kernels work in, grown on demand and kept between calls (one per caller:
/// calls that share one must be ordered on one stream). It holds, per point, 12 L W + 8 W +
/// 8 K + 8 values of the network's type and one double, and per 128 points a partial sum of
/// every parameter and of the loss (L hidden layers of W units, K modes).
class FusedAllenCahnWorkspace {
 public:
  FusedAllenCahnWorkspace() = default;
  /// Frees the device memory (after waiting for the device, as cudaFree does).
  ~FusedAllenCahnWorkspace();
  FusedAllenCahnWorkspace(const FusedAllenCahnWorkspace&) = delete;
  FusedAllenCahnWorkspace& operator=(const FusedAllenCahnWorkspace&) = delete;

  /// The bytes of device memory held.
  std::size_t bytes() const { return bytes_; }
  /// A device buffer of at least `bytes` bytes, reallocated (contents lost) when smaller.
  void* reserve(std::size_t bytes);

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Evaluates loss = scale * sum_i w_i r_i^2 over the n points (x, t interleaved, device) with
/// point weights `weights` (device, n; null: all 1) into loss_out[0] (device), and, when
/// `with_gradient`, its gradient with respect to every parameter into gradient_out (device,
/// flat in the order weight_0, bias_0, ..., output weight, output bias); the residuals r_i into
/// residuals_out (device, n) when it is not null. The network's pointers are device pointers.
/// Everything is enqueued on `stream`; nothing waits for it. `threads_per_block` (a multiple of
/// 32, at most 1024) changes the launches but not the results.
/// Throws InvalidArgument for an invalid view or size, CommError naming the CUDA call that failed.
void fused_allen_cahn_cuda(const FusedNetworkView<float>& network, const FusedAllenCahnPointOptions& options,
                           const float* points, const float* weights, int64_t n, double scale,
                           bool with_gradient, float* loss_out, float* gradient_out, float* residuals_out,
                           FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block = 128);
/// The same in double precision.
void fused_allen_cahn_cuda(const FusedNetworkView<double>& network, const FusedAllenCahnPointOptions& options,
                           const double* points, const double* weights, int64_t n, double scale,
                           bool with_gradient, double* loss_out, double* gradient_out, double* residuals_out,
                           FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block = 128);

/// fused_allen_cahn_cuda's launches captured once as a CUDA graph, then replayed: one
/// cudaGraphLaunch per evaluation in place of four kernel launches, the same bits. A graph binds
/// the pointers, sizes and constants it was captured with, not the values behind them: the
/// caller moves the parameters or points by writing into the same buffers. A call with other
/// arguments (new points after a redraw, another n, a loss-only call, another workspace
/// buffer) captures a new graph. Capture needs a created stream (not the legacy default
/// stream, nullptr); the workspace is sized before the capture, so nothing is allocated inside.
class FusedAllenCahnGraph {
 public:
  FusedAllenCahnGraph() = default;
  ~FusedAllenCahnGraph();
  FusedAllenCahnGraph(const FusedAllenCahnGraph&) = delete;
  FusedAllenCahnGraph& operator=(const FusedAllenCahnGraph&) = delete;

  /// As fused_allen_cahn_cuda, replaying the graph (capturing it first where needed).
  void run(const FusedNetworkView<float>& network, const FusedAllenCahnPointOptions& options, const float* points,
           const float* weights, int64_t n, double scale, bool with_gradient, float* loss_out, float* gradient_out,
           float* residuals_out, FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block = 128);
  void run(const FusedNetworkView<double>& network, const FusedAllenCahnPointOptions& options,
           const double* points, const double* weights, int64_t n, double scale, bool with_gradient,
           double* loss_out, double* gradient_out, double* residuals_out, FusedAllenCahnWorkspace& workspace,
           cudaStream_t stream, int threads_per_block = 128);
  /// How many graphs were captured: 1 + the recaptures.
  int captures() const { return captures_; }

 private:
  template <typename T>
  void run_typed(const FusedNetworkView<T>& network, const FusedAllenCahnPointOptions& options, const T* points,
                 const T* weights, int64_t n, double scale, bool with_gradient, T* loss_out, T* gradient_out,
                 T* residuals_out, FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block);
  void release();

  std::vector<unsigned char> arguments_;  ///< what the graph was captured with, byte by byte
  cudaGraphExec_t graph_ = nullptr;
  int captures_ = 0;
};

}  // namespace ddtrain::gpu
