#pragma once
// The elementwise arithmetic of a tanh layer in Taylor mode (internal to the library; used by
// the stacked jet in taylor.cpp and by the fused Allen–Cahn loss).
//
// A jet is stored slot-major: slot 0 the value, slot 1 d/dx, then d/dt if `t`, then d2/dx2 if
// `xx` (always last), each slot `e` elements apart. With v = z_0 + b, a = tanh v, s = 1 - a^2,
// s' = -2 a s, s'' = -2 s (1 - 3 a^2), the outputs are
//   o_0 = a,  o_x = s z_x,  o_t = s z_t,  o_xx = s z_xx + s' z_x^2
// and for output gradients g the input gradients
//   g_x' = s g_x + 2 s' z_x g_xx,  g_t' = s g_t,  g_xx' = s g_xx,
//   g_v  = s g_0 + s' (z_x g_x + z_t g_t + z_xx g_xx) + s'' z_x^2 g_xx   (stored in slot 0).
// The loops are branch-free for each (T, t, xx) so that the compiler vectorizes them.
#include <cstdint>

namespace ddtrain::detail {

/// Elements [begin, end) of slots 1.. of `out`; slot 0 of `out` must already hold a = tanh(v).
template <typename T, bool t, bool xx>
inline void tanh_jet_forward_range(const T* __restrict__ z, T* __restrict__ out, int64_t e,
                                   int64_t begin, int64_t end) {
  const int64_t sx = e, st = 2 * e, sxx = (t ? 3 : 2) * e;
  for (int64_t i = begin; i < end; ++i) {
    const T a = out[i], s = 1 - a * a, zx = z[sx + i];
    out[sx + i] = s * zx;
    if constexpr (t) out[st + i] = s * z[st + i];
    if constexpr (xx) out[sxx + i] = s * z[sxx + i] - 2 * a * s * zx * zx;
  }
}

/// Elements [begin, end) of every slot of the input gradient `gz` from the output gradient `g`.
template <typename T, bool t, bool xx>
inline void tanh_jet_backward_range(const T* __restrict__ z, const T* __restrict__ out,
                                    const T* __restrict__ g, T* __restrict__ gz, int64_t e,
                                    int64_t begin, int64_t end) {
  const int64_t sx = e, st = 2 * e, sxx = (t ? 3 : 2) * e;
  for (int64_t i = begin; i < end; ++i) {
    const T a = out[i], s = 1 - a * a, s1 = -2 * a * s, zx = z[sx + i];
    T gv = s * g[i] + s1 * zx * g[sx + i];
    T gx = s * g[sx + i];
    if constexpr (t) {
      gv += s1 * z[st + i] * g[st + i];
      gz[st + i] = s * g[st + i];
    }
    if constexpr (xx) {
      const T gxx = g[sxx + i], s2 = -2 * s * (1 - 3 * a * a);
      gv += (s1 * z[sxx + i] + s2 * zx * zx) * gxx;
      gx += 2 * s1 * zx * gxx;
      gz[sxx + i] = s * gxx;
    }
    gz[i] = gv;
    gz[sx + i] = gx;
  }
}

}  // namespace ddtrain::detail
