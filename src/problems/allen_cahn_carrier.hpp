#pragma once
// The heat-smoothed corner of the Allen-Cahn initial condition (AllenCahnOptions::ic_smoothing),
// written once for scalars (the fused loss) and for tensors (the Taylor and autograd paths).

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace ddtrain::detail {

/// u0 = x^2 cos(pi x) is, across the periodic boundary, -1 + 2|s| + O(s^2) in the signed
/// distance s to x = +-1 (slope -2 at x = 1, +2 at x = -1).
constexpr double kCornerSlope = 2.0;
/// Times below this count as this for sigma, so that no derivative of the formula overflows
/// (float32 included); the correction is switched off at t = 0 exactly.
constexpr double kCornerSmallestTime = 1e-12;

template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
T corner_distance(T x) { return x > 0 ? x - T(1) : x + T(1); }
inline torch::Tensor corner_distance(const torch::Tensor& x) { return torch::where(x > 0, x - 1, x + 1); }

template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
T sign_of(T s) { return T((s > 0) - (s < 0)); }
inline torch::Tensor sign_of(const torch::Tensor& s) { return torch::sign(s); }

template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
T smoothing_time(T t) { return std::max(t, T(kCornerSmallestTime)); }
inline torch::Tensor smoothing_time(const torch::Tensor& t) { return t.clamp_min(kCornerSmallestTime); }

template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
T started(T t) { return t > 0 ? T(1) : T(0); }
inline torch::Tensor started(const torch::Tensor& t) { return (t > 0).to(t.scalar_type()); }

/// A value and its x, t and xx derivatives.
template <class T>
struct CornerJet {
  T value{}, x{}, t{}, xx{};
};

/// kCornerSlope (g - |s|) with g(s, t) = E|s + sigma Z| = sigma sqrt(2/pi) exp(-s^2/(2 sigma^2))
/// + s erf(s/(sigma sqrt 2)), sigma^2 = 2 nu t: the heat equation u_t = nu u_xx applied to the
/// corner |s| for a time t. Added to u0, it makes the carrier smooth across x = +-1 for t > 0
/// (the solution's corner is rounded off diffusively, over a width sqrt(nu t)), is 0 at t = 0
/// (the initial condition stays exact) and obeys the heat equation away from the corner, so
/// its t and xx derivatives are nu g_ss and g_ss there.
template <class T>
CornerJet<T> smoothed_corner(const T& x, const T& t, double diffusion) {
  using std::abs;
  using std::erf;
  using std::exp;
  using std::sqrt;
  const double sqrt_two_over_pi = std::sqrt(2.0 / M_PI);
  const T s = corner_distance(x);
  const T sigma = sqrt(smoothing_time(t) * (2.0 * diffusion));
  const T z = s / (sigma * std::sqrt(2.0));
  const T gauss = exp(-(z * z));
  const T on = started(t);
  const T erf_z = erf(z);
  CornerJet<T> jet;
  jet.value = kCornerSlope * on * (sigma * sqrt_two_over_pi * gauss + s * erf_z - abs(s));
  jet.x = kCornerSlope * on * (erf_z - sign_of(s));
  jet.xx = kCornerSlope * on * (sqrt_two_over_pi * gauss / sigma);
  jet.t = diffusion * jet.xx;
  return jet;
}

}  // namespace ddtrain::detail
