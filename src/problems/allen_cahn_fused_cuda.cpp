// FusedAllenCahnLoss on CUDA tensors (allen_cahn_fused_cuda.hpp): the parameters' and points'
// device pointers handed to the CUDA kernels (ddtrain/cuda/fused_allen_cahn.hpp) on LibTorch's
// current CUDA stream. Built only with a CUDA LibTorch (DDTRAIN_FUSED_ALLEN_CAHN_CUDA).
#include "allen_cahn_fused_cuda.hpp"

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "allen_cahn_fused_view.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain::detail {

FusedAllenCahnLoss::Result run_fused_allen_cahn_cuda(const FusedTanhNetwork& network,
                                                     const FusedAllenCahnOptions& options,
                                                     const std::vector<torch::Tensor>& parameters,
                                                     FusedCudaState& state, const torch::Tensor& points,
                                                     double scale, bool with_gradient,
                                                     const torch::Tensor& point_weights,
                                                     const torch::Tensor& residuals_out, size_t lowest_trained) {
  const torch::Device device = points.device();
  const torch::ScalarType dtype = parameters.front().scalar_type();
  DDTRAIN_CHECK(device.is_cuda() && points.dim() == 2 && points.size(1) == 2 && points.scalar_type() == dtype,
                InvalidArgument, "the fused Allen–Cahn loss needs (n, 2) points of the network's dtype");
  for (const torch::Tensor& p : parameters)
    DDTRAIN_CHECK(p.device() == device, InvalidArgument,
                  "the fused Allen–Cahn loss needs the points on the parameters' device (", p.device(),
                  "), got ", device);
  DDTRAIN_CHECK(!point_weights.defined() ||
                    (point_weights.dim() == 1 && point_weights.size(0) == points.size(0) &&
                     point_weights.device() == device && point_weights.scalar_type() == dtype),
                InvalidArgument,
                "the fused Allen–Cahn loss needs one weight per point, on the points' device, of the "
                "network's dtype");
  DDTRAIN_CHECK(!residuals_out.defined() ||
                    (residuals_out.dim() == 1 && residuals_out.size(0) == points.size(0) &&
                     residuals_out.device() == device && residuals_out.scalar_type() == dtype &&
                     residuals_out.is_contiguous()),
                InvalidArgument,
                "the fused Allen–Cahn loss's residuals must be (n), contiguous, on the points' device");

  const c10::cuda::CUDAGuard guard(device);
  torch::NoGradGuard no_grad;
  // Contiguous values; a copy made here is freed in the order of the current stream, after the
  // kernels enqueued on it have read it (LibTorch's caching allocator).
  const torch::Tensor xt = points.detach().contiguous();
  const torch::Tensor w = point_weights.defined() ? point_weights.detach().contiguous() : torch::Tensor();
  std::vector<torch::Tensor> values;
  int64_t count = 0;
  for (const torch::Tensor& p : parameters) {
    values.push_back(p.detach().contiguous());
    count += p.numel();
  }
  const torch::Tensor loss = torch::empty({1}, xt.options());
  const torch::Tensor gradient = with_gradient ? torch::empty({count}, xt.options()) : torch::Tensor();

  // One workspace per device: a workspace of another device is freed (cudaFree waits for it).
  if (!state.workspace || state.device != device.index()) {
    state.workspace.reset();
    state.workspace = std::make_unique<gpu::FusedAllenCahnWorkspace>();
    state.device = device.index();
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();
  const gpu::FusedAllenCahnPointOptions point_options = fused_point_options(options);
  AT_DISPATCH_FLOATING_TYPES(xt.scalar_type(), "fused_allen_cahn_cuda", [&] {
    const gpu::FusedNetworkView<scalar_t> view = fused_network_view<scalar_t>(network, values);
    gpu::fused_allen_cahn_cuda(view, point_options, xt.data_ptr<scalar_t>(),
                               w.defined() ? w.data_ptr<scalar_t>() : nullptr, xt.size(0), scale, with_gradient,
                               loss.data_ptr<scalar_t>(), with_gradient ? gradient.data_ptr<scalar_t>() : nullptr,
                               residuals_out.defined() ? residuals_out.data_ptr<scalar_t>() : nullptr,
                               *state.workspace, stream);
  });

  FusedAllenCahnLoss::Result result;
  result.loss = loss.item<double>();  // waits for the stream: Result::loss is a host number
  if (with_gradient) {
    int64_t offset = 0;
    for (size_t i = 0; i < parameters.size(); ++i) {
      const int64_t numel = parameters[i].numel();
      torch::Tensor g = gradient.narrow(0, offset, numel).view(parameters[i].sizes());
      if (i < 2 * lowest_trained) g.zero_();  // frozen hidden layers: zero, as the CPU path leaves them
      result.gradients.push_back(g);
      offset += numel;
    }
  }
  return result;
}

}  // namespace ddtrain::detail
