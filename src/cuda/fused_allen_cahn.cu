// The fused Allen–Cahn loss and gradient as CUDA kernels (ddtrain/cuda/fused_allen_cahn.hpp).
// Four launches on the caller's stream, each a loop body of the host executor
// (fused_allen_cahn_host.hpp) with one thread per index:
//   forward_kernel   one thread per point: features, hidden layers, output, residual, dloss/dN
//   backward_kernel  one thread per point: the jets' backward pass into gz of every layer
//   tile_kernel      one thread per (parameter or loss, tile of kTilePoints points): the sum
//                    over the tile's points, in point order
//   final_kernel     one thread per parameter and one for the loss: the sum over the tiles, in
//                    tile order, into the caller's buffers
// No floating-point atomics: every sum has a fixed order, so the results do not depend on
// threads_per_block. FusedAllenCahnGraph captures the same four launches as one CUDA graph.
#include "ddtrain/cuda/fused_allen_cahn.hpp"

#include <cuda_runtime.h>

#include <string>
#include <utility>
#include <vector>

#include "allen_cahn_point_math.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain::gpu {

namespace {

/// Throws CommError naming the call and CUDA's error text (the pattern of src/comm/nccl_core.cpp).
void check_cuda(cudaError_t code, const char* call) {
  if (code == cudaSuccess) return;
  cudaGetLastError();  // clears a non-sticky error so the next, unrelated call does not report it
  throw CommError(::ddtrain::detail::concat(call, " failed: ", cudaGetErrorString(code), " (",
                                            cudaGetErrorName(code), ")"));
}
#define DDTRAIN_FUSED_CUDA_CHECK(call) check_cuda((call), #call)

/// The largest threads_per_block; the kernels are compiled to launch with it (at most 64
/// registers per thread), so no allowed launch fails for lack of registers.
constexpr int kMaxThreadsPerBlock = 1024;

template <typename T>
__global__ void __launch_bounds__(kMaxThreadsPerBlock)
    forward_kernel(FusedNetworkView<T> network, FusedAllenCahnPointOptions options, double scale,
                   const T* points, const T* weights, T* residuals, detail::FusedLayout<T> ws) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < ws.n) detail::forward_point(network, options, scale, points, weights, residuals, ws, i);
}

template <typename T>
__global__ void __launch_bounds__(kMaxThreadsPerBlock)
    backward_kernel(FusedNetworkView<T> network, detail::FusedLayout<T> ws) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < ws.n) detail::backward_point(network, ws, i);
}

/// Index q = k (parameters + 1) + p: tile k, parameter p (p == parameters: the loss).
template <typename T>
__global__ void __launch_bounds__(kMaxThreadsPerBlock)
    tile_kernel(FusedNetworkView<T> network, detail::FusedLayout<T> ws, int64_t parameters, int64_t tiles) {
  const int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= tiles * (parameters + 1)) return;
  detail::reduce_tile(network, ws, parameters, q % (parameters + 1), q / (parameters + 1));
}

template <typename T>
__global__ void __launch_bounds__(kMaxThreadsPerBlock)
    final_kernel(detail::FusedLayout<T> ws, int64_t parameters, double scale, T* loss_out, T* gradient_out) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p <= parameters) detail::reduce_tiles(ws, parameters, p, scale, loss_out, gradient_out);
}

unsigned int blocks_for(int64_t threads, int threads_per_block) {
  return static_cast<unsigned int>((threads + threads_per_block - 1) / threads_per_block);
}

constexpr std::size_t kAlignment = 256;
std::size_t aligned(std::size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

template <typename T>
void check_arguments(const FusedNetworkView<T>& network, const T* points, int64_t n, bool with_gradient,
                     const T* loss_out, const T* gradient_out, int threads_per_block) {
  const std::string problem = detail::check_view(network);
  DDTRAIN_CHECK(problem.empty(), InvalidArgument, problem);
  DDTRAIN_CHECK(n >= 0, InvalidArgument, "the fused Allen-Cahn kernels need n >= 0 points, got ", n);
  DDTRAIN_CHECK(threads_per_block >= 32 && threads_per_block <= kMaxThreadsPerBlock && threads_per_block % 32 == 0,
                InvalidArgument,
                "the fused Allen-Cahn kernels need threads_per_block a multiple of 32 in [32, 1024], got ",
                threads_per_block);
  DDTRAIN_CHECK(loss_out != nullptr && (n == 0 || points != nullptr) && (!with_gradient || gradient_out != nullptr),
                InvalidArgument, "the fused Allen-Cahn kernels got a null points, loss or gradient buffer");
}

/// The workspace's T values, then its doubles at an aligned offset.
template <typename T>
std::size_t value_bytes(const FusedNetworkView<T>& network, int64_t n) {
  return aligned(sizeof(T) * static_cast<std::size_t>(detail::workspace_values(network, n)));
}
template <typename T>
std::size_t workspace_bytes(const FusedNetworkView<T>& network, int64_t n) {
  return value_bytes(network, n) + sizeof(double) * static_cast<std::size_t>(detail::workspace_doubles(n));
}

/// The four launches on checked arguments, in a workspace of workspace_bytes at `base`.
template <typename T>
void enqueue(const FusedNetworkView<T>& network, const FusedAllenCahnPointOptions& options, const T* points,
             const T* weights, int64_t n, double scale, bool with_gradient, T* loss_out, T* gradient_out,
             T* residuals_out, char* base, cudaStream_t stream, int threads_per_block) {
  const detail::FusedLayout<T> ws = detail::make_layout(network, n, reinterpret_cast<T*>(base),
                                                        reinterpret_cast<double*>(base + value_bytes(network, n)));

  const int64_t parameters = with_gradient ? detail::parameter_count(network) : 0;
  const int64_t tiles = detail::tile_count(n);
  if (n > 0) {
    forward_kernel<T><<<blocks_for(n, threads_per_block), threads_per_block, 0, stream>>>(
        network, options, scale, points, weights, residuals_out, ws);
    DDTRAIN_FUSED_CUDA_CHECK(cudaGetLastError());
    if (with_gradient) {
      backward_kernel<T><<<blocks_for(n, threads_per_block), threads_per_block, 0, stream>>>(network, ws);
      DDTRAIN_FUSED_CUDA_CHECK(cudaGetLastError());
    }
    tile_kernel<T><<<blocks_for(tiles * (parameters + 1), threads_per_block), threads_per_block, 0, stream>>>(
        network, ws, parameters, tiles);
    DDTRAIN_FUSED_CUDA_CHECK(cudaGetLastError());
  }
  final_kernel<T><<<blocks_for(parameters + 1, threads_per_block), threads_per_block, 0, stream>>>(
      ws, parameters, scale, loss_out, gradient_out);
  DDTRAIN_FUSED_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void launch(const FusedNetworkView<T>& network, const FusedAllenCahnPointOptions& options, const T* points,
            const T* weights, int64_t n, double scale, bool with_gradient, T* loss_out, T* gradient_out,
            T* residuals_out, FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block) {
  check_arguments(network, points, n, with_gradient, loss_out, gradient_out, threads_per_block);
  char* base = static_cast<char*>(workspace.reserve(workspace_bytes(network, n)));
  enqueue(network, options, points, weights, n, scale, with_gradient, loss_out, gradient_out, residuals_out, base,
          stream, threads_per_block);
}

/// Appends the bytes of each value (no padding: scalars and pointers only).
class ArgumentBytes {
 public:
  template <typename V>
  ArgumentBytes& operator<<(const V& value) {
    const auto* p = reinterpret_cast<const unsigned char*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(V));
    return *this;
  }
  std::vector<unsigned char> take() { return std::move(bytes_); }

 private:
  std::vector<unsigned char> bytes_;
};

}  // namespace

FusedAllenCahnWorkspace::~FusedAllenCahnWorkspace() {
  if (data_ != nullptr) cudaFree(data_);  // a destructor does not throw; a failure here is ignored
}

void* FusedAllenCahnWorkspace::reserve(std::size_t bytes) {
  if (bytes <= bytes_ && data_ != nullptr) return data_;
  if (data_ != nullptr) {
    DDTRAIN_FUSED_CUDA_CHECK(cudaFree(data_));  // waits for the work that used it
    data_ = nullptr;
    bytes_ = 0;
  }
  DDTRAIN_FUSED_CUDA_CHECK(cudaMalloc(&data_, bytes > 0 ? bytes : 1));
  bytes_ = bytes;
  return data_;
}

FusedAllenCahnGraph::~FusedAllenCahnGraph() { release(); }

void FusedAllenCahnGraph::release() {
  if (graph_ != nullptr) cudaGraphExecDestroy(graph_);  // may run in the destructor: not checked
  graph_ = nullptr;
  arguments_.clear();
}

template <typename T>
void FusedAllenCahnGraph::run_typed(const FusedNetworkView<T>& network, const FusedAllenCahnPointOptions& options,
                                    const T* points, const T* weights, int64_t n, double scale, bool with_gradient,
                                    T* loss_out, T* gradient_out, T* residuals_out,
                                    FusedAllenCahnWorkspace& workspace, cudaStream_t stream,
                                    int threads_per_block) {
  DDTRAIN_CHECK(stream != nullptr, InvalidArgument,
                "a CUDA graph is captured on a created stream, not on the legacy default stream (nullptr)");
  check_arguments(network, points, n, with_gradient, loss_out, gradient_out, threads_per_block);
  char* base = static_cast<char*>(workspace.reserve(workspace_bytes(network, n)));
  ArgumentBytes key;
  key << sizeof(T) << network.layers << network.width << network.modes << network.residual;
  for (int l = 0; l < network.layers; ++l) key << network.weight[l] << network.bias[l];
  key << network.output_weight << network.output_bias << options.diffusion << options.reaction << options.ic_decay
      << options.ic_smoothing << points << weights << n << scale << with_gradient << loss_out << gradient_out
      << residuals_out << base << stream << threads_per_block;
  std::vector<unsigned char> arguments = key.take();
  if (graph_ == nullptr || arguments != arguments_) {
    release();
    DDTRAIN_FUSED_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t captured = nullptr;
    try {
      enqueue(network, options, points, weights, n, scale, with_gradient, loss_out, gradient_out, residuals_out,
              base, stream, threads_per_block);
    } catch (...) {
      cudaStreamEndCapture(stream, &captured);  // ends the failed capture; its error is the one thrown
      if (captured != nullptr) cudaGraphDestroy(captured);
      throw;
    }
    DDTRAIN_FUSED_CUDA_CHECK(cudaStreamEndCapture(stream, &captured));
    const cudaError_t instantiated = cudaGraphInstantiate(&graph_, captured, 0);
    cudaGraphDestroy(captured);
    if (instantiated != cudaSuccess) graph_ = nullptr;
    DDTRAIN_FUSED_CUDA_CHECK(instantiated);
    arguments_ = std::move(arguments);
    ++captures_;
  }
  DDTRAIN_FUSED_CUDA_CHECK(cudaGraphLaunch(graph_, stream));
}

void FusedAllenCahnGraph::run(const FusedNetworkView<float>& network, const FusedAllenCahnPointOptions& options,
                              const float* points, const float* weights, int64_t n, double scale, bool with_gradient,
                              float* loss_out, float* gradient_out, float* residuals_out,
                              FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block) {
  run_typed<float>(network, options, points, weights, n, scale, with_gradient, loss_out, gradient_out, residuals_out,
                   workspace, stream, threads_per_block);
}

void FusedAllenCahnGraph::run(const FusedNetworkView<double>& network, const FusedAllenCahnPointOptions& options,
                              const double* points, const double* weights, int64_t n, double scale,
                              bool with_gradient, double* loss_out, double* gradient_out, double* residuals_out,
                              FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block) {
  run_typed<double>(network, options, points, weights, n, scale, with_gradient, loss_out, gradient_out,
                    residuals_out, workspace, stream, threads_per_block);
}

void fused_allen_cahn_cuda(const FusedNetworkView<float>& network, const FusedAllenCahnPointOptions& options,
                           const float* points, const float* weights, int64_t n, double scale,
                           bool with_gradient, float* loss_out, float* gradient_out, float* residuals_out,
                           FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block) {
  launch<float>(network, options, points, weights, n, scale, with_gradient, loss_out, gradient_out, residuals_out,
                workspace, stream, threads_per_block);
}

void fused_allen_cahn_cuda(const FusedNetworkView<double>& network, const FusedAllenCahnPointOptions& options,
                           const double* points, const double* weights, int64_t n, double scale,
                           bool with_gradient, double* loss_out, double* gradient_out, double* residuals_out,
                           FusedAllenCahnWorkspace& workspace, cudaStream_t stream, int threads_per_block) {
  launch<double>(network, options, points, weights, n, scale, with_gradient, loss_out, gradient_out,
                 residuals_out, workspace, stream, threads_per_block);
}

}  // namespace ddtrain::gpu
