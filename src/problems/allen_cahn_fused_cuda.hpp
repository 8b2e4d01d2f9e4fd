#pragma once
// The fused Allen–Cahn loss on CUDA tensors: FusedAllenCahnLoss::run hands CUDA points to the
// CUDA kernels of ddtrain/cuda/fused_allen_cahn.hpp through run_fused_allen_cahn_cuda
// (allen_cahn_fused_cuda.cpp). That file is compiled, and DDTRAIN_FUSED_ALLEN_CAHN_CUDA defined
// for it and allen_cahn_fused.cpp, only when the LibTorch has CUDA and the CUDA toolkit is found;
// otherwise FusedCudaState is empty and CUDA points are refused as before.
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "ddtrain/problems/allen_cahn_fused.hpp"
#ifdef DDTRAIN_FUSED_ALLEN_CAHN_CUDA
#include "ddtrain/cuda/fused_allen_cahn.hpp"
#endif

namespace ddtrain::detail {

/// What a FusedAllenCahnLoss keeps between CUDA evaluations: the kernels' device workspace and
/// the device it is on (nothing in a build without the CUDA kernels).
struct FusedCudaState {
#ifdef DDTRAIN_FUSED_ALLEN_CAHN_CUDA
  std::unique_ptr<gpu::FusedAllenCahnWorkspace> workspace;
  int device = -1;
#endif
};

#ifdef DDTRAIN_FUSED_ALLEN_CAHN_CUDA
/// FusedAllenCahnLoss::run for CUDA points: the loss and the gradients of `parameters`
/// (FusedAllenCahnLoss::parameters()' order; those of the hidden layers below `lowest_trained`
/// zero, as on the CPU) by the CUDA kernels on the current CUDA stream of the points' device,
/// the residuals into `residuals_out` when defined. The gradients are CUDA tensors (views of one
/// flat buffer); the loss is read back to the host (one wait for the stream per call).
/// Throws InvalidArgument for points, weights or residuals not of the parameters' dtype and device.
FusedAllenCahnLoss::Result run_fused_allen_cahn_cuda(const FusedTanhNetwork& network,
                                                     const FusedAllenCahnOptions& options,
                                                     const std::vector<torch::Tensor>& parameters,
                                                     FusedCudaState& state, const torch::Tensor& points,
                                                     double scale, bool with_gradient,
                                                     const torch::Tensor& point_weights,
                                                     const torch::Tensor& residuals_out, size_t lowest_trained);
#endif

}  // namespace ddtrain::detail
