#pragma once
// The per-point and per-unit arithmetic of the fused Allen–Cahn loss, written once for the CUDA
// kernels (src/cuda/fused_allen_cahn.cu, nvcc) and their plain C++ host executor
// (src/cuda/fused_allen_cahn_host.hpp, g++): no LibTorch, no std:: calls in device code.
//
// The mathematics is that of FusedAllenCahnLoss (src/problems/allen_cahn_fused.cpp, run_chunk):
// Taylor jets (u, u_x, u_t, u_xx) as 4 slots pushed through the tanh layers
// (src/models/tanh_jet_kernels.hpp), the hard-constraint carrier with ic_decay and the
// optional smoothed corner (src/problems/allen_cahn_carrier.hpp), the residual, dloss/dr, and
// the backward pass. The order of execution differs: one point at a time (a CUDA thread per
// point), the weight gradients summed afterwards over fixed tiles of points.
//
// Workspace layout (FusedLayout): every per-point quantity is a block of rows, each row holding
// one value for each of the n points (point index fastest, so that neighbouring CUDA threads
// touch neighbouring addresses). A jet block of `cols` columns has 4 * cols rows: element
// (slot s, column j) of point i is at block[(s * cols + j) * n + i].
#include <cstdint>
#include <math.h>

#include <string>

#include "ddtrain/cuda/fused_network_view.hpp"

#if defined(__CUDACC__)
#define DDTRAIN_HOST_DEVICE __host__ __device__
#else
#define DDTRAIN_HOST_DEVICE
#endif

namespace ddtrain::gpu::detail {

constexpr double kPi = 3.14159265358979323846;
constexpr int kSlots = 4;  // value, d/dx, d/dt, d2/dx2
/// Points per tile of the gradient reduction: fixed, so the sums do not depend on the launch.
constexpr int64_t kTilePoints = 128;

// Math functions for float and double on host and device (the global-namespace C functions,
// which CUDA declares __host__ __device__; std:: versions are host-only).
DDTRAIN_HOST_DEVICE inline double m_tanh(double x) { return ::tanh(x); }
DDTRAIN_HOST_DEVICE inline float m_tanh(float x) { return ::tanhf(x); }
DDTRAIN_HOST_DEVICE inline double m_exp(double x) { return ::exp(x); }
DDTRAIN_HOST_DEVICE inline float m_exp(float x) { return ::expf(x); }
DDTRAIN_HOST_DEVICE inline double m_cos(double x) { return ::cos(x); }
DDTRAIN_HOST_DEVICE inline float m_cos(float x) { return ::cosf(x); }
DDTRAIN_HOST_DEVICE inline double m_sin(double x) { return ::sin(x); }
DDTRAIN_HOST_DEVICE inline float m_sin(float x) { return ::sinf(x); }
DDTRAIN_HOST_DEVICE inline double m_sqrt(double x) { return ::sqrt(x); }
DDTRAIN_HOST_DEVICE inline float m_sqrt(float x) { return ::sqrtf(x); }
DDTRAIN_HOST_DEVICE inline double m_erf(double x) { return ::erf(x); }
DDTRAIN_HOST_DEVICE inline float m_erf(float x) { return ::erff(x); }
DDTRAIN_HOST_DEVICE inline double m_abs(double x) { return ::fabs(x); }
DDTRAIN_HOST_DEVICE inline float m_abs(float x) { return ::fabsf(x); }

/// T where it must not be deduced (C++17 has no std::type_identity): the network view alone
/// fixes the type, so null pointers can be passed for the optional buffers.
template <typename T>
struct NotDeduced {
  using type = T;
};
template <typename T>
using not_deduced_t = typename NotDeduced<T>::type;

/// The inputs of layer 0: 2K + 1.
DDTRAIN_HOST_DEVICE inline int feature_count(int modes) { return 2 * modes + 1; }

/// The inputs of hidden layer l.
template <typename T>
DDTRAIN_HOST_DEVICE inline int layer_inputs(const FusedNetworkView<T>& net, int l) {
  return l == 0 ? feature_count(net.modes) : net.width;
}

/// Weights and biases of every layer, in the order weight_0, bias_0, ..., output weight, output bias.
template <typename T>
DDTRAIN_HOST_DEVICE inline int64_t parameter_count(const FusedNetworkView<T>& net) {
  int64_t count = 0;
  for (int l = 0; l < net.layers; ++l) count += static_cast<int64_t>(net.width) * (layer_inputs(net, l) + 1);
  return count + net.width + 1;
}

/// "" or why the view cannot be evaluated (host only).
template <typename T>
inline std::string check_view(const FusedNetworkView<T>& net) {
  if (net.layers < 1 || net.layers > kFusedMaxHiddenLayers)
    return "the fused Allen-Cahn kernels need 1.." + std::to_string(kFusedMaxHiddenLayers) +
           " hidden layers, got " + std::to_string(net.layers);
  if (net.width < 1) return "the fused Allen-Cahn kernels need a width >= 1, got " + std::to_string(net.width);
  if (net.modes < 1) return "the fused Allen-Cahn kernels need K >= 1 Fourier modes, got " + std::to_string(net.modes);
  for (int l = 0; l < net.layers; ++l)
    if (net.weight[l] == nullptr || net.bias[l] == nullptr)
      return "the fused Allen-Cahn kernels got a null weight or bias of hidden layer " + std::to_string(l);
  if (net.output_weight == nullptr || net.output_bias == nullptr)
    return "the fused Allen-Cahn kernels got a null output weight or bias";
  return "";
}

// ---- the workspace -------------------------------------------------------------------------

/// Where the per-point quantities and the tile sums live (host or device memory).
template <typename T>
struct FusedLayout {
  int64_t n = 0;                  ///< points: the length of every row
  int width = 0;                  ///< hidden units
  T* features = nullptr;          ///< the feature jets, 4 (2K + 1) rows
  T* layers = nullptr;            ///< per hidden layer 12 width rows: zsa, h, gz (below)
  T* g[2] = {nullptr, nullptr};   ///< dloss/dh jets of the backward pass (ping-pong), 4 width rows each
  T* gy = nullptr;                ///< dloss/dN jet at the output, 4 rows
  double* loss_terms = nullptr;   ///< w_i r_i^2, 1 row
  T* partials = nullptr;          ///< per tile, every parameter's gradient summed over the tile's points
  double* loss_partials = nullptr;  ///< per tile, the sum of its loss terms

  /// Layer l's tanh input and output: (a, z_x, z_t, z_xx) with a = tanh(z_0 + b), 4 width rows.
  DDTRAIN_HOST_DEVICE T* zsa(int l) const { return layers + static_cast<int64_t>(12) * width * n * l; }
  /// Layer l's output jet h_l, 4 width rows.
  DDTRAIN_HOST_DEVICE T* h(int l) const { return zsa(l) + static_cast<int64_t>(4) * width * n; }
  /// dloss/d(pre-activation jet) of layer l (slot 0: d/d(z_0 + b)), 4 width rows.
  DDTRAIN_HOST_DEVICE T* gz(int l) const { return zsa(l) + static_cast<int64_t>(8) * width * n; }
};

/// The number of tiles of n points.
DDTRAIN_HOST_DEVICE inline int64_t tile_count(int64_t n) { return (n + kTilePoints - 1) / kTilePoints; }

/// The T elements of the workspace for n points (features, layers, g, gy, partials).
template <typename T>
inline int64_t workspace_values(const FusedNetworkView<T>& net, int64_t n) {
  const int64_t w = net.width;
  return n * (kSlots * feature_count(net.modes) + 12 * w * net.layers + 8 * w + kSlots) +
         tile_count(n) * parameter_count(net);
}

/// The double elements of the workspace for n points (loss terms and their tile sums).
inline int64_t workspace_doubles(int64_t n) { return n + tile_count(n); }

/// Lays the workspace out over `values` (workspace_values T elements) and `doubles`
/// (workspace_doubles elements).
template <typename T>
inline FusedLayout<T> make_layout(const FusedNetworkView<T>& net, int64_t n, T* values, double* doubles) {
  FusedLayout<T> ws;
  const int64_t w = net.width;
  ws.n = n;
  ws.width = net.width;
  ws.features = values;
  ws.layers = ws.features + n * kSlots * feature_count(net.modes);
  ws.g[0] = ws.layers + n * 12 * w * net.layers;
  ws.g[1] = ws.g[0] + n * kSlots * w;
  ws.gy = ws.g[1] + n * kSlots * w;
  ws.partials = ws.gy + n * kSlots;
  ws.loss_terms = doubles;
  ws.loss_partials = doubles + n;
  return ws;
}

// ---- per-unit and per-point arithmetic -----------------------------------------------------

/// A value and its x, t and xx derivatives (the smoothed corner).
template <typename T>
struct PointJet {
  T value, x, t, xx;
};

/// The heat-smoothed corner of the initial condition: the same formulas as
/// ddtrain::detail::smoothed_corner (src/problems/allen_cahn_carrier.hpp), usable on the device.
template <typename T>
DDTRAIN_HOST_DEVICE inline PointJet<T> smoothed_corner(T x, T t, double diffusion) {
  const T slope = T(2.0);                  // kCornerSlope
  const T smallest_time = T(1e-12);        // kCornerSmallestTime
  const T sqrt_two_over_pi = static_cast<T>(m_sqrt(2.0 / kPi));
  const T sqrt_two = static_cast<T>(m_sqrt(2.0));
  const T s = x > 0 ? x - T(1) : x + T(1);
  const T sign = T((s > 0) - (s < 0));
  const T smoothing_time = t > smallest_time ? t : smallest_time;
  const T sigma = m_sqrt(smoothing_time * static_cast<T>(2.0 * diffusion));
  const T z = s / (sigma * sqrt_two);
  const T gauss = m_exp(-(z * z));
  const T on = t > 0 ? T(1) : T(0);
  const T erf_z = m_erf(z);
  PointJet<T> jet;
  jet.value = slope * on * (sigma * sqrt_two_over_pi * gauss + s * erf_z - m_abs(s));
  jet.x = slope * on * (erf_z - sign);
  jet.xx = slope * on * (sqrt_two_over_pi * gauss / sigma);
  jet.t = static_cast<T>(diffusion) * jet.xx;
  return jet;
}

/// A point's residual and the gradient of its loss term scale * w * r^2 with respect to N's
/// jet (the value, x, t and xx slots).
template <typename T>
struct PointResidual {
  T r;
  T gy[kSlots];
};

/// u = (x^2 cos(pi x) + corner) e^{-decay t} + t N from N's jet (value, t, xx) and the corner's
/// (zeros without ic_smoothing), the residual r = u_t - nu u_xx + reaction (u^3 - u) and
/// dloss/dN; c, s = cos(pi x), sin(pi x). The one formula of the CPU fused loss
/// (allen_cahn_fused.cpp) and the kernels.
template <typename T>
DDTRAIN_HOST_DEVICE inline PointResidual<T> point_residual(const FusedAllenCahnPointOptions& options, double scale,
                                                           T x, T t, T c, T s, const PointJet<T>& network,
                                                           const PointJet<T>& corner, T w) {
  const T pi = static_cast<T>(kPi);
  const T nu = static_cast<T>(options.diffusion), reaction = static_cast<T>(options.reaction);
  const T decay = static_cast<T>(options.ic_decay);
  const T x2 = x * x;
  const T e = decay == 0 ? T(1) : m_exp(-decay * t);  // e = 1 exactly without decay
  const T u0 = x2 * c + corner.value;
  const T u = u0 * e + t * network.value;
  const T u_t = network.value + t * network.t - decay * u0 * e + corner.t * e;
  const T u_xx = (2 * c - 4 * pi * x * s - pi * pi * x2 * c + corner.xx) * e + t * network.xx;
  PointResidual<T> out;
  out.r = u_t - nu * u_xx + reaction * (u * u * u - u);
  const T d = static_cast<T>(2 * scale) * w * out.r;  // dloss/dr
  out.gy[0] = t * d * reaction * (3 * u * u - 1) + d;  // through u and u_t
  out.gy[1] = 0;                                       // u_x is not in the residual
  out.gy[2] = t * d;
  out.gy[3] = -nu * t * d;
  return out;
}

/// The tanh jet of one unit: from the pre-activation jet z (slot 0 without the bias) and the
/// bias, out = (a, s z_x, s z_t, s z_xx + s' z_x^2) with a = tanh(z_0 + b), s = 1 - a^2,
/// s' = -2 a s (detail::tanh_jet_forward_range).
template <typename T>
DDTRAIN_HOST_DEVICE inline void tanh_jet_forward(const T z[kSlots], T bias, T out[kSlots]) {
  const T a = m_tanh(z[0] + bias), s = 1 - a * a, zx = z[1];
  out[0] = a;
  out[1] = s * zx;
  out[2] = s * z[2];
  out[3] = s * z[3] - 2 * a * s * zx * zx;
}

/// The input gradient gz of one unit's tanh jet from its output gradient g, given
/// zsa = (a, z_x, z_t, z_xx) (detail::tanh_jet_backward_range).
template <typename T>
DDTRAIN_HOST_DEVICE inline void tanh_jet_backward(const T zsa[kSlots], const T g[kSlots], T gz[kSlots]) {
  const T a = zsa[0], s = 1 - a * a, s1 = -2 * a * s, zx = zsa[1];
  T gv = s * g[0] + s1 * zx * g[1];
  T gx = s * g[1];
  gv += s1 * zsa[2] * g[2];
  gz[2] = s * g[2];
  const T gxx = g[3], s2 = -2 * s * (1 - 3 * a * a);
  gv += (s1 * zsa[3] + s2 * zx * zx) * gxx;
  gx += 2 * s1 * zx * gxx;
  gz[3] = s * gxx;
  gz[0] = gv;
  gz[1] = gx;
}

/// Point i forward: features, every hidden layer (zsa and h into the workspace), the output,
/// the carrier and the residual (into `residuals` if not null), w_i r_i^2 into the loss terms
/// and dloss/dN (the gradient of scale * w_i r_i^2 with respect to N's jet) into gy.
template <typename T>
DDTRAIN_HOST_DEVICE inline void forward_point(const FusedNetworkView<T>& net,
                                              const FusedAllenCahnPointOptions& options, double scale,
                                              const T* points, const T* weights, T* residuals,
                                              const FusedLayout<T>& ws, int64_t i) {
  const int64_t n = ws.n;
  const int features = feature_count(net.modes), width = net.width;
  const T pi = static_cast<T>(kPi);
  const T x = points[2 * i], t = points[2 * i + 1];

  // Features cos(k pi x), sin(k pi x) (k = 1..K), t and their x, t and xx derivatives.
  T* f = ws.features;
  const int64_t slot_f = static_cast<int64_t>(features) * n;  // distance between slots
  T c = 0, s = 0;                                              // cos(pi x), sin(pi x)
  for (int k = 1; k <= net.modes; ++k) {
    const T w = pi * static_cast<T>(k);
    const T ck = m_cos(w * x), sk = m_sin(w * x);
    if (k == 1) c = ck, s = sk;
    T* v = f + static_cast<int64_t>(2 * (k - 1)) * n + i;
    v[0] = ck, v[n] = sk;
    v[slot_f] = -w * sk, v[slot_f + n] = w * ck;
    v[2 * slot_f] = 0, v[2 * slot_f + n] = 0;
    v[3 * slot_f] = -w * w * ck, v[3 * slot_f + n] = -w * w * sk;
  }
  {
    T* v = f + static_cast<int64_t>(features - 1) * n + i;
    v[0] = t, v[slot_f] = 0, v[2 * slot_f] = 1, v[3 * slot_f] = 0;
  }

  // Hidden layers: z = W h_{l-1} on all slots, the tanh jet, h = a or h_{l-1} + a.
  const int64_t slot_w = static_cast<int64_t>(width) * n;
  for (int l = 0; l < net.layers; ++l) {
    const int inputs = layer_inputs(net, l);
    const int64_t slot_in = static_cast<int64_t>(inputs) * n;
    const T* in = (l == 0 ? f : ws.h(l - 1)) + i;
    const T* weight = net.weight[l];
    T* zsa = ws.zsa(l) + i;
    T* h = ws.h(l) + i;
    const bool skip = net.residual && l > 0;
    for (int j = 0; j < width; ++j) {
      T z[kSlots] = {0, 0, 0, 0};
      const T* row = weight + static_cast<int64_t>(j) * inputs;
      for (int m = 0; m < inputs; ++m) {
        const T wjm = row[m];
        const T* column = in + static_cast<int64_t>(m) * n;
        for (int q = 0; q < kSlots; ++q) z[q] += wjm * column[q * slot_in];
      }
      T a[kSlots];
      tanh_jet_forward(z, net.bias[l][j], a);
      const int64_t at = static_cast<int64_t>(j) * n;
      zsa[at] = a[0];
      for (int q = 1; q < kSlots; ++q) zsa[at + q * slot_w] = z[q];
      for (int q = 0; q < kSlots; ++q) h[at + q * slot_w] = skip ? in[at + q * slot_w] + a[q] : a[q];
    }
  }

  // The output N (slot 0 without its bias) of the top layer.
  T y[kSlots] = {0, 0, 0, 0};
  {
    const T* top = ws.h(net.layers - 1) + i;
    for (int m = 0; m < width; ++m) {
      const T wm = net.output_weight[m];
      for (int q = 0; q < kSlots; ++q) y[q] += wm * top[static_cast<int64_t>(m) * n + q * slot_w];
    }
  }

  // The residual, the loss term, dloss/dN per slot.
  const PointJet<T> network = {y[0] + net.output_bias[0], y[1], y[2], y[3]};
  PointJet<T> corner = {0, 0, 0, 0};
  if (options.ic_smoothing) corner = smoothed_corner<T>(x, t, options.diffusion);
  const T w = weights ? weights[i] : T(1);
  const PointResidual<T> point = point_residual(options, scale, x, t, c, s, network, corner, w);
  if (residuals) residuals[i] = point.r;
  ws.loss_terms[i] = static_cast<double>(w) * static_cast<double>(point.r) * static_cast<double>(point.r);
  for (int q = 0; q < kSlots; ++q) ws.gy[q * n + i] = point.gy[q];
}

/// Point i backward (after forward_point): dloss/dh of the top layer from gy, then for each
/// hidden layer from the top the tanh jet backward into gz(l) and dloss/dh_{l-1} (back through
/// W_l, plus the skip connection's identity in a ResNet).
template <typename T>
DDTRAIN_HOST_DEVICE inline void backward_point(const FusedNetworkView<T>& net, const FusedLayout<T>& ws,
                                               int64_t i) {
  const int64_t n = ws.n;
  const int width = net.width;
  const int64_t slot_w = static_cast<int64_t>(width) * n;
  T* g = ws.g[0] + i;
  T* g_next = ws.g[1] + i;
  for (int m = 0; m < width; ++m) {
    const T wm = net.output_weight[m];
    for (int q = 0; q < kSlots; ++q) g[static_cast<int64_t>(m) * n + q * slot_w] = ws.gy[q * n + i] * wm;
  }
  for (int l = net.layers - 1; l >= 0; --l) {
    const T* zsa = ws.zsa(l) + i;
    T* gz = ws.gz(l) + i;
    for (int j = 0; j < width; ++j) {
      const int64_t at = static_cast<int64_t>(j) * n;
      T zj[kSlots], gj[kSlots], out[kSlots];
      for (int q = 0; q < kSlots; ++q) zj[q] = zsa[at + q * slot_w], gj[q] = g[at + q * slot_w];
      tanh_jet_backward(zj, gj, out);
      for (int q = 0; q < kSlots; ++q) gz[at + q * slot_w] = out[q];
    }
    if (l == 0) break;
    // dloss/dh_{l-1} = W_l^T gz (+ g through the skip connection).
    const T* weight = net.weight[l];
    const bool skip = net.residual;
    for (int m = 0; m < width; ++m) {
      T acc[kSlots];
      for (int q = 0; q < kSlots; ++q) acc[q] = skip ? g[static_cast<int64_t>(m) * n + q * slot_w] : T(0);
      for (int j = 0; j < width; ++j) {
        const T wjm = weight[static_cast<int64_t>(j) * width + m];
        for (int q = 0; q < kSlots; ++q) acc[q] += gz[static_cast<int64_t>(j) * n + q * slot_w] * wjm;
      }
      for (int q = 0; q < kSlots; ++q) g_next[static_cast<int64_t>(m) * n + q * slot_w] = acc[q];
    }
    T* swap = g;
    g = g_next;
    g_next = swap;
  }
}

/// The gradient of parameter p (flat order: weight_0, bias_0, ..., output weight, output bias)
/// summed over points [begin, end), in increasing point order (after backward_point).
template <typename T>
DDTRAIN_HOST_DEVICE inline T tile_gradient(const FusedNetworkView<T>& net, const FusedLayout<T>& ws, int64_t p,
                                           int64_t begin, int64_t end) {
  const int64_t n = ws.n;
  const int width = net.width;
  T sum = 0;
  for (int l = 0; l < net.layers; ++l) {
    const int inputs = layer_inputs(net, l);
    const int64_t weights = static_cast<int64_t>(width) * inputs;
    if (p < weights) {  // weight (j, m) of layer l: sum over points and slots of gz_j in_m
      const int64_t j = p / inputs, m = p % inputs;
      const T* gz = ws.gz(l) + j * n;
      const T* in = (l == 0 ? ws.features : ws.h(l - 1)) + m * n;
      const int64_t slot_w = static_cast<int64_t>(width) * n, slot_in = static_cast<int64_t>(inputs) * n;
      for (int64_t i = begin; i < end; ++i)
        for (int q = 0; q < kSlots; ++q) sum += gz[q * slot_w + i] * in[q * slot_in + i];
      return sum;
    }
    p -= weights;
    if (p < width) {  // bias j of layer l: slot 0 of gz_j
      const T* gz = ws.gz(l) + p * n;
      for (int64_t i = begin; i < end; ++i) sum += gz[i];
      return sum;
    }
    p -= width;
  }
  if (p < width) {  // output weight m: sum over points and slots of gy h_m
    const T* top = ws.h(net.layers - 1) + p * n;
    const int64_t slot_w = static_cast<int64_t>(width) * n;
    for (int64_t i = begin; i < end; ++i)
      for (int q = 0; q < kSlots; ++q) sum += ws.gy[q * n + i] * top[q * slot_w + i];
    return sum;
  }
  for (int64_t i = begin; i < end; ++i) sum += ws.gy[i];  // output bias: slot 0 of gy
  return sum;
}

/// The loss terms of points [begin, end) summed in increasing point order.
template <typename T>
DDTRAIN_HOST_DEVICE inline double tile_loss(const FusedLayout<T>& ws, int64_t begin, int64_t end) {
  double sum = 0;
  for (int64_t i = begin; i < end; ++i) sum += ws.loss_terms[i];
  return sum;
}

/// Tile k's sums: parameter p's partial (p < parameters) or, for p == parameters, the loss's.
template <typename T>
DDTRAIN_HOST_DEVICE inline void reduce_tile(const FusedNetworkView<T>& net, const FusedLayout<T>& ws,
                                            int64_t parameters, int64_t p, int64_t k) {
  const int64_t begin = k * kTilePoints;
  const int64_t end = begin + kTilePoints < ws.n ? begin + kTilePoints : ws.n;
  if (p < parameters) ws.partials[k * parameters + p] = tile_gradient(net, ws, p, begin, end);
  else ws.loss_partials[k] = tile_loss(ws, begin, end);
}

/// The final sums over the tiles in increasing tile order: parameter p's gradient (p <
/// parameters) or, for p == parameters, the loss scale * sum_i w_i r_i^2.
template <typename T>
DDTRAIN_HOST_DEVICE inline void reduce_tiles(const FusedLayout<T>& ws, int64_t parameters, int64_t p,
                                             double scale, T* loss_out, T* gradient_out) {
  const int64_t tiles = tile_count(ws.n);
  if (p < parameters) {
    T sum = 0;
    for (int64_t k = 0; k < tiles; ++k) sum += ws.partials[k * parameters + p];
    gradient_out[p] = sum;
  } else {
    double sum = 0;
    for (int64_t k = 0; k < tiles; ++k) sum += ws.loss_partials[k];
    loss_out[0] = static_cast<T>(scale * sum);
  }
}

}  // namespace ddtrain::gpu::detail
