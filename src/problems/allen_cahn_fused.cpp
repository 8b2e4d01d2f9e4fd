#include "ddtrain/problems/allen_cahn_fused.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "../cuda/allen_cahn_point_math.hpp"
#include "../models/tanh_jet_kernels.hpp"
#include "../single_threaded.hpp"
#include "allen_cahn_carrier.hpp"
#include "allen_cahn_fused_cuda.hpp"
#include "allen_cahn_fused_view.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kSlots = 4;     // value, d/dx, d/dt, d2/dx2
/// At most this many reduction blocks (BlockSums): enough for the threads of one node, and
/// few enough that their gradient buffers (one parameter vector each) stay small.
constexpr int64_t kReductionBlocks = 64;

/// Inputs of the network: cos(k pi x), sin(k pi x) for k = 1..K, then t (2K + 1).
int64_t features_of(const FusedTanhNetwork& network) { return network.hidden.front()->weight.size(1); }

bool fusable(const FusedTanhNetwork& network) {
  // Plain weights only: a factorized layer (factorize_weights) applies diag(exp(s)) V.
  auto has_bias = [](const torch::nn::Linear& layer) {
    return layer && layer->bias.defined() && layer->named_parameters(false).find("log_scale") == nullptr;
  };
  if (network.hidden.empty() || !has_bias(network.output) || network.output->weight.size(0) != 1)
    return false;
  const int64_t width = network.hidden.front()->weight.size(0);
  int64_t inputs = features_of(network);
  if (inputs < 3 || inputs % 2 == 0) return false;
  for (const torch::nn::Linear& layer : network.hidden) {
    if (!has_bias(layer) || layer->weight.size(1) != inputs || layer->weight.size(0) != width)
      return false;
    inputs = width;
  }
  return network.output->weight.size(1) == width;
}

/// The first 4 * b rows of a flat slot-major buffer with `cols` columns, as a (4 b, cols) matrix.
torch::Tensor rows(const torch::Tensor& flat, int64_t b, int64_t cols) {
  return flat.narrow(0, 0, kSlots * b * cols).view({kSlots * b, cols});
}

}  // namespace

std::optional<FusedTanhNetwork> FusedTanhNetwork::of(ResNetImpl& network) {
  if (network.options().activation != Activation::kTanh) return std::nullopt;
  FusedTanhNetwork fused{network.units(), network.output(), true};
  if (!fusable(fused)) return std::nullopt;
  return fused;
}

std::optional<FusedTanhNetwork> FusedTanhNetwork::of(FullyConnectedImpl& network) {
  const auto& linears = network.linears();
  if (network.options().activation != Activation::kTanh || linears.size() < 2) return std::nullopt;
  FusedTanhNetwork fused{std::vector<torch::nn::Linear>(linears.begin(), linears.end() - 1),
                         linears.back(), false};
  if (!fusable(fused)) return std::nullopt;
  return fused;
}

namespace detail {

/// One thread's buffers for chunks of up to `capacity` points, slot-major (4, b, cols): the
/// features, every layer's pre-activations z, activations a and (ResNet blocks) outputs h, and
/// the gradient flowing back.
struct FusedWorkspace {
  int64_t capacity = 0;
  torch::Tensor features, trig, y, gy, g, g_next, gz;  // flat
  std::vector<torch::Tensor> z, a, h;                   // flat; h undefined where h = a

  // (4 b, cols) views for chunks of `viewed` points, rebuilt only when b changes.
  int64_t viewed = -1;
  int64_t feature_count = 0;
  torch::Tensor features_v, y_v, gy_v, g_v, g_next_v, gz_v;
  std::vector<torch::Tensor> z_v, a_v, h_v;  // h_v[l] is a_v[l] where h = a

  FusedWorkspace(const FusedTanhNetwork& network, int64_t points, const torch::TensorOptions& options)
      : capacity(points), feature_count(features_of(network)) {
    const int64_t width = network.hidden.front()->weight.size(0), stack = kSlots * points;
    features = torch::empty({stack * features_of(network)}, options);
    trig = torch::empty({2 * points}, options);
    y = torch::empty({stack}, options);
    gy = torch::empty({stack}, options);
    g = torch::empty({stack * width}, options);
    g_next = torch::empty({stack * width}, options);
    gz = torch::empty({stack * width}, options);
    for (size_t l = 0; l < network.hidden.size(); ++l) {
      z.push_back(torch::empty({stack * width}, options));
      a.push_back(torch::empty({stack * width}, options));
      h.push_back(network.residual && l > 0 ? torch::empty({stack * width}, options) : torch::Tensor());
    }
  }

  void view(int64_t b, int64_t width) {
    if (b == viewed) return;
    viewed = b;
    features_v = rows(features, b, feature_count);
    y_v = rows(y, b, 1);
    gy_v = rows(gy, b, 1);
    g_v = rows(g, b, width);
    g_next_v = rows(g_next, b, width);
    gz_v = rows(gz, b, width);
    z_v.clear(), a_v.clear(), h_v.clear();
    for (size_t l = 0; l < z.size(); ++l) {
      z_v.push_back(rows(z[l], b, width));
      a_v.push_back(rows(a[l], b, width));
      h_v.push_back(h[l].defined() ? rows(h[l], b, width) : a_v.back());
    }
  }

};

/// The sums of the loss and the parameter gradients over one reduction block: a fixed range of
/// chunks, added in chunk order by whichever thread runs the block. The blocks are then added in
/// block order, so the result does not depend on the number of threads.
struct BlockSums {
  double loss = 0;
  std::vector<torch::Tensor> gradients;  // empty: loss only

  void reset(const std::vector<torch::Tensor>& parameters, bool with_gradient) {
    loss = 0;
    if (!with_gradient) {
      gradients.clear();
      return;
    }
    const bool reusable = gradients.size() == parameters.size() &&
                          std::equal(gradients.begin(), gradients.end(), parameters.begin(),
                                     [](const torch::Tensor& g, const torch::Tensor& p) {
                                       return g.sizes() == p.sizes() && g.scalar_type() == p.scalar_type();
                                     });
    if (reusable) {
      for (torch::Tensor& g : gradients) g.zero_();
      return;
    }
    gradients.clear();
    for (const torch::Tensor& p : parameters) gradients.push_back(torch::zeros_like(p).detach());
  }
};

/// The output h of the frozen hidden layers 0..layers-1 for every point, chunk by chunk
/// (chunk k at k * 4 * chunk * width, slot-major like the workspaces), with the points and the
/// frozen parameter values it was computed for.
struct FrozenLayersCache {
  size_t layers = 0;
  torch::Tensor points;
  std::vector<torch::Tensor> parameters;
  torch::Tensor outputs;
  bool valid = false;

  bool matches(size_t frozen, const torch::Tensor& xt, const std::vector<torch::Tensor>& frozen_parameters) const {
    if (!valid || layers != frozen || points.sizes() != xt.sizes() ||
        points.scalar_type() != xt.scalar_type() || !torch::equal(points, xt))
      return false;
    for (size_t i = 0; i < parameters.size(); ++i)
      if (!torch::equal(parameters[i], frozen_parameters[i])) return false;
    return true;
  }

  /// Makes room for `chunks` chunks and records what the outputs about to be written are for.
  void refill(size_t frozen, const torch::Tensor& xt, const std::vector<torch::Tensor>& frozen_parameters,
              int64_t chunks, int64_t chunk_values) {
    valid = false;
    layers = frozen;
    points = xt.clone();
    parameters.clear();
    for (const torch::Tensor& p : frozen_parameters) parameters.push_back(p.detach().clone());
    if (!outputs.defined() || outputs.numel() != chunks * chunk_values ||
        outputs.scalar_type() != xt.scalar_type())
      outputs = torch::empty({chunks * chunk_values}, xt.options());
  }
};

}  // namespace detail

namespace {

using detail::FusedWorkspace;

/// What a chunk does with the frozen layers' output: nothing (no frozen layer), store it
/// (computed afresh) or load it (cached, the forward starts above the frozen layers).
enum class FrozenOutput { kNone, kStore, kLoad };

/// Chunk of b points (x, t interleaved; `weights` and `residuals` of the same chunk or null):
/// forward through the network, residual (into `residuals` if given), loss added to `sums`;
/// then, if it collects gradients, the backward pass into them.
template <typename T>
void run_chunk(const FusedTanhNetwork& network, const FusedAllenCahnOptions& options,
               double scale, const T* points, const T* weights, T* residuals, int64_t b,
               size_t lowest_trained, FrozenOutput frozen_mode, T* frozen_output, FusedWorkspace& ws,
               detail::BlockSums& sums) {
  const size_t layers = network.hidden.size();
  const int64_t width = network.hidden.front()->weight.size(0), e = b * width;
  const T pi = static_cast<T>(kPi);
  ws.view(b, width);

  // Hard-constraint features cos(k pi x), sin(k pi x) (k = 1..K), t and their x, t and xx
  // derivatives; trig keeps cos(pi x), sin(pi x) for the residual.
  const int64_t features = ws.feature_count, modes = (features - 1) / 2;
  T* f = ws.features.data_ptr<T>();
  T* trig = ws.trig.data_ptr<T>();
  for (int64_t i = 0; i < b; ++i) {
    const T x = points[2 * i], t = points[2 * i + 1];
    T* value = f + features * i;
    T* dx = value + features * b;
    T* dt = dx + features * b;
    T* dxx = dt + features * b;
    for (int64_t k = 1; k <= modes; ++k) {
      const T w = pi * static_cast<T>(k);
      const T c = std::cos(w * x), s = std::sin(w * x);
      if (k == 1) trig[i] = c, trig[b + i] = s;
      T* v = value + 2 * (k - 1);
      T* vx = dx + 2 * (k - 1);
      T* vt = dt + 2 * (k - 1);
      T* vxx = dxx + 2 * (k - 1);
      v[0] = c, v[1] = s;
      vx[0] = -w * s, vx[1] = w * c;
      vt[0] = 0, vt[1] = 0;
      vxx[0] = -w * w * c, vxx[1] = -w * w * s;
    }
    value[features - 1] = t;
    dx[features - 1] = 0;
    dt[features - 1] = 1;
    dxx[features - 1] = 0;
  }

  // Forward: z = W h on all slots, a = the tanh jet of z + b, h = a or h_prev + a; above the
  // frozen layers when their output is cached.
  const size_t first = frozen_mode == FrozenOutput::kLoad ? lowest_trained : 0;
  if (first > 0)
    std::copy(frozen_output, frozen_output + kSlots * e, ws.h_v[first - 1].data_ptr<T>());
  for (size_t l = first; l < layers; ++l) {
    const torch::nn::Linear& layer = network.hidden[l];
    at::mm_out(ws.z_v[l], l == 0 ? ws.features_v : ws.h_v[l - 1], layer->weight.t());
    const T* z = ws.z[l].data_ptr<T>();
    T* a = ws.a[l].data_ptr<T>();
    const T* bias = layer->bias.data_ptr<T>();
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < width; ++j) a[i * width + j] = z[i * width + j] + bias[j];
    ws.a[l].narrow(0, 0, e).tanh_();
    detail::tanh_jet_forward_range<T, true, true>(z, a, e, 0, e);
    if (ws.h[l].defined()) {
      const T* h_prev = ws.h_v[l - 1].data_ptr<T>();
      T* h = ws.h[l].data_ptr<T>();
      for (int64_t k = 0; k < kSlots * e; ++k) h[k] = h_prev[k] + a[k];
    }
    if (frozen_mode == FrozenOutput::kStore && l + 1 == lowest_trained) {
      const T* h = ws.h_v[l].data_ptr<T>();
      std::copy(h, h + kSlots * e, frozen_output);
    }
  }
  const torch::Tensor& top = ws.h_v[layers - 1];
  at::mm_out(ws.y_v, top, network.output->weight.t());

  // u = (x^2 cos(pi x) + corner) e^{-decay t} + t N, the residual, the loss, dloss/dN per slot:
  // the per-point formula the CUDA kernels share (src/cuda/allen_cahn_point_math.hpp).
  const T* y = ws.y.data_ptr<T>();
  T* gy = ws.gy.data_ptr<T>();
  const T out_bias = network.output->bias.data_ptr<T>()[0];
  const bool with_gradient = !sums.gradients.empty();
  const gpu::FusedAllenCahnPointOptions point_options = detail::fused_point_options(options);
  double sum = 0;
  for (int64_t i = 0; i < b; ++i) {
    const T x = points[2 * i], t = points[2 * i + 1];
    const gpu::detail::PointJet<T> output = {y[i] + out_bias, y[b + i], y[2 * b + i], y[3 * b + i]};
    // With --ic-smoothing the corner's heat-smoothed part is added (zeros otherwise: x + 0 == x).
    const detail::CornerJet<T> k =
        options.ic_smoothing ? detail::smoothed_corner<T>(x, t, options.diffusion) : detail::CornerJet<T>{};
    const T w = weights ? weights[i] : T(1);
    const gpu::detail::PointResidual<T> point = gpu::detail::point_residual(
        point_options, scale, x, t, trig[i], trig[b + i], output, {k.value, k.x, k.t, k.xx}, w);
    if (residuals) residuals[i] = point.r;
    sum += static_cast<double>(w) * static_cast<double>(point.r) * static_cast<double>(point.r);
    for (int64_t q = 0; q < kSlots; ++q) gy[q * b + i] = point.gy[q];
  }
  sums.loss += sum;
  if (!with_gradient) return;

  // Backward: the output layer, then each tanh layer (jet backward, bias, weight, input).
  std::vector<torch::Tensor>& grads = sums.gradients;
  torch::Tensor& out_weight_grad = grads[2 * layers];
  at::addmm_out(out_weight_grad, out_weight_grad, ws.gy_v.t(), top);
  T* out_bias_grad = grads[2 * layers + 1].data_ptr<T>();
  for (int64_t i = 0; i < b; ++i) out_bias_grad[0] += gy[i];
  if (lowest_trained >= layers) return;  // only the output layer is trained
  at::mm_out(ws.g_v, ws.gy_v, network.output->weight);  // dloss/dh of the last layer
  T* gz = ws.gz.data_ptr<T>();
  for (size_t l = layers; l-- > lowest_trained;) {
    const torch::nn::Linear& layer = network.hidden[l];
    detail::tanh_jet_backward_range<T, true, true>(ws.z[l].data_ptr<T>(), ws.a[l].data_ptr<T>(),
                                                   ws.g.data_ptr<T>(), gz, e, 0, e);
    T* bias_grad = grads[2 * l + 1].data_ptr<T>();
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < width; ++j) bias_grad[j] += gz[i * width + j];
    at::addmm_out(grads[2 * l], grads[2 * l], ws.gz_v.t(), l == 0 ? ws.features_v : ws.h_v[l - 1]);
    if (l == lowest_trained) break;  // nothing below is trained
    // dloss/dh_{l-1}: back through W_l, plus the skip connection's identity (ResNet).
    if (network.residual) at::addmm_out(ws.g_next_v, ws.g_v, ws.gz_v, layer->weight);
    else at::mm_out(ws.g_next_v, ws.gz_v, layer->weight);
    std::swap(ws.g, ws.g_next);
    std::swap(ws.g_v, ws.g_next_v);
  }
}

}  // namespace

namespace detail {

/// Hands the gradient computed with the loss to autograd. A friend of FusedAllenCahnLoss: it
/// passes the lowest trained layer of this call to `run`, so no per-call state is kept.
class FusedLossFunction : public torch::autograd::Function<FusedLossFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::TensorList parameters,
                               FusedAllenCahnLoss* loss, const torch::Tensor& points, double scale,
                               const c10::optional<torch::Tensor>& point_weights, int64_t lowest_trained) {
    FusedAllenCahnLoss::Result result =
        loss->run(points, scale, true, point_weights.value_or(torch::Tensor()), torch::Tensor(),
                  static_cast<size_t>(lowest_trained));
    ctx->save_for_backward(result.gradients);
    return torch::scalar_tensor(result.loss, parameters[0].options());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::autograd::variable_list out;
    for (const torch::Tensor& g : ctx->get_saved_variables()) out.push_back(g * grad_outputs[0]);
    out.resize(out.size() + 5);  // loss, points, scale, weights, lowest_trained: no gradient
    return out;
  }
};

}  // namespace detail

FusedAllenCahnLoss::FusedAllenCahnLoss(FusedTanhNetwork network, FusedAllenCahnOptions options)
    : network_(std::move(network)),
      options_(options),
      frozen_cache_(std::make_unique<detail::FrozenLayersCache>()) {
  DDTRAIN_CHECK(fusable(network_), InvalidArgument,
                "the fused Allen–Cahn loss needs a tanh network with biases, 2K + 1 inputs, equal "
                "hidden widths and 1 output");
  DDTRAIN_CHECK(options_.chunk >= 1, InvalidArgument, "the fused loss's chunk must be >= 1");
}

FusedAllenCahnLoss::~FusedAllenCahnLoss() = default;

size_t FusedAllenCahnLoss::cached_frozen_layers() const {
  return frozen_cache_->valid ? frozen_cache_->layers : 0;
}

size_t FusedAllenCahnLoss::frozen_layers() const {
  size_t frozen = 0;
  while (frozen < network_.hidden.size() && !network_.hidden[frozen]->weight.requires_grad() &&
         !network_.hidden[frozen]->bias.requires_grad())
    ++frozen;
  return frozen;
}

std::vector<torch::Tensor> FusedAllenCahnLoss::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& layer : network_.hidden) {
    out.push_back(layer->weight);
    out.push_back(layer->bias);
  }
  out.push_back(network_.output->weight);
  out.push_back(network_.output->bias);
  return out;
}

FusedAllenCahnLoss::Result FusedAllenCahnLoss::evaluate(const torch::Tensor& points, double scale,
                                                        bool with_gradient,
                                                        const torch::Tensor& point_weights) {
  return run(points, scale, with_gradient, point_weights, torch::Tensor(), 0);
}

torch::Tensor FusedAllenCahnLoss::residuals(const torch::Tensor& points) {
  torch::Tensor r = torch::empty({points.dim() == 2 ? points.size(0) : 0},
                                 network_.output->weight.options().requires_grad(false));
  run(points, 1.0, false, torch::Tensor(), r, 0);
  return r;
}

FusedAllenCahnLoss::Result FusedAllenCahnLoss::run(const torch::Tensor& points, double scale,
                                                   bool with_gradient,
                                                   const torch::Tensor& point_weights,
                                                   const torch::Tensor& residuals_out,
                                                   size_t lowest_trained) {
#ifdef DDTRAIN_FUSED_ALLEN_CAHN_CUDA
  if (points.device().is_cuda()) {  // the CUDA kernels (allen_cahn_fused_cuda.cpp)
    if (!cuda_state_) cuda_state_ = std::make_unique<detail::FusedCudaState>();
    return detail::run_fused_allen_cahn_cuda(network_, options_, parameters(), *cuda_state_, points, scale,
                                             with_gradient, point_weights, residuals_out, lowest_trained);
  }
#endif
  const torch::Tensor& weight = network_.output->weight;
  DDTRAIN_CHECK(points.dim() == 2 && points.size(1) == 2 && points.device().is_cpu() &&
                    points.scalar_type() == weight.scalar_type() && weight.device().is_cpu(),
                InvalidArgument,
                "the fused Allen–Cahn loss needs (n, 2) CPU points of the network's dtype");
  DDTRAIN_CHECK(!point_weights.defined() ||
                    (point_weights.dim() == 1 && point_weights.size(0) == points.size(0) &&
                     point_weights.device().is_cpu() && point_weights.scalar_type() == weight.scalar_type()),
                InvalidArgument, "the fused Allen–Cahn loss needs one CPU weight per point, of the network's dtype");
  const torch::Tensor xt = points.detach().contiguous();
  const torch::Tensor w = point_weights.defined() ? point_weights.detach().contiguous() : point_weights;
  const std::vector<torch::Tensor> params = parameters();
  const int64_t n = xt.size(0), chunk = options_.chunk;
  const int64_t chunks = (n + chunk - 1) / chunk;
  const size_t threads = static_cast<size_t>(std::max(1, at::get_num_threads()));
  if (workspaces_.size() < threads) workspaces_.resize(threads);
  for (auto& ws : workspaces_) {
    if (!ws || ws->capacity != chunk || ws->features.scalar_type() != weight.scalar_type())
      ws = std::make_unique<detail::FusedWorkspace>(network_, chunk, weight.options().requires_grad(false));
  }
  // Reduction blocks: a fixed split of the chunks that does not depend on the thread count.
  const int64_t blocks = std::min<int64_t>(chunks, kReductionBlocks);
  if (block_sums_.size() < static_cast<size_t>(blocks)) block_sums_.resize(blocks);
  for (int64_t k = 0; k < blocks; ++k) {
    if (!block_sums_[k]) block_sums_[k] = std::make_unique<detail::BlockSums>();
    block_sums_[k]->reset(params, with_gradient);
  }
  torch::NoGradGuard no_grad;
  // Frozen lower layers: their output is loaded when cached for these points and values,
  // else computed and stored for the next evaluation.
  FrozenOutput frozen_mode = FrozenOutput::kNone;
  const int64_t width = network_.hidden.front()->weight.size(0), chunk_values = kSlots * chunk * width;
  if (lowest_trained > 0) {
    const std::vector<torch::Tensor> frozen_parameters(params.begin(), params.begin() + 2 * lowest_trained);
    if (frozen_cache_->matches(lowest_trained, xt, frozen_parameters)) {
      frozen_mode = FrozenOutput::kLoad;
    } else {
      frozen_cache_->refill(lowest_trained, xt, frozen_parameters, chunks, chunk_values);
      frozen_mode = FrozenOutput::kStore;
    }
  }
  AT_DISPATCH_FLOATING_TYPES(xt.scalar_type(), "fused_allen_cahn_loss", [&] {
    const scalar_t* p = xt.data_ptr<scalar_t>();
    const scalar_t* wp = w.defined() ? w.data_ptr<scalar_t>() : nullptr;
    scalar_t* rp = residuals_out.defined() ? residuals_out.data_ptr<scalar_t>() : nullptr;
    scalar_t* cached = lowest_trained > 0 ? frozen_cache_->outputs.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      detail::SingleThreadedSection single;  // chunk matrices are small: one BLAS thread each
      torch::NoGradGuard no_grad_here;  // grad mode is per thread: the workers' too
      FusedWorkspace& ws = *workspaces_[at::get_thread_num()];
      for (int64_t block = begin; block < end; ++block) {
        for (int64_t k = block * chunks / blocks; k < (block + 1) * chunks / blocks; ++k) {
          const int64_t first = k * chunk, b = std::min(chunk, n - first);
          run_chunk<scalar_t>(network_, options_, scale, p + 2 * first, wp ? wp + first : nullptr,
                              rp ? rp + first : nullptr, b, lowest_trained, frozen_mode,
                              cached ? cached + k * chunk_values : nullptr, ws, *block_sums_[block]);
        }
      }
    });
  });
  if (frozen_mode == FrozenOutput::kStore) frozen_cache_->valid = true;
  Result result;
  for (int64_t k = 0; k < blocks; ++k) result.loss += block_sums_[k]->loss;
  result.loss *= scale;
  if (with_gradient) {
    for (const torch::Tensor& g : block_sums_[0]->gradients) result.gradients.push_back(g.clone());
    for (int64_t k = 1; k < blocks; ++k)
      for (size_t i = 0; i < params.size(); ++i) result.gradients[i].add_(block_sums_[k]->gradients[i]);
  }
  return result;
}

torch::Tensor FusedAllenCahnLoss::operator()(const torch::Tensor& points, double scale,
                                             const torch::Tensor& point_weights) {
  const std::vector<torch::Tensor> params = parameters();
  const bool differentiable =
      torch::GradMode::is_enabled() &&
      std::any_of(params.begin(), params.end(), [](const torch::Tensor& p) { return p.requires_grad(); });
  if (!differentiable)
    return torch::scalar_tensor(
        run(points, scale, false, point_weights, torch::Tensor(), frozen_layers()).loss,
        params[0].options().requires_grad(false));
  // Frozen layers below the lowest trained one (a subdomain solve of preconditioned L-BFGS)
  // need no backward; their gradients stay zero and autograd ignores them.
  const size_t lowest_trained = frozen_layers();
  // An undefined tensor cannot be a custom Function's input: no weights = nullopt.
  const c10::optional<torch::Tensor> weights =
      point_weights.defined() ? c10::optional<torch::Tensor>(point_weights.detach()) : c10::nullopt;
  return detail::FusedLossFunction::apply(torch::TensorList(params), this, points.detach(), scale, weights,
                                          static_cast<int64_t>(lowest_trained));
}

}  // namespace ddtrain
