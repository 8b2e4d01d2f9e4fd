// The dense quasi-Newton's per-iteration work on H (d x d, float64): ddtrain's two passes over
// the upper triangle (symmetric_products for H y and H g+, then apply_dense_update) against the
// plain LibTorch form of the same iteration (H.mv for the direction and for H y, a scaling and
// two addr_ over the full matrix, the update grouped as p u' + q s' as ddtrain does).
// Prints CSV: d, ddtrain_ms, libtorch_ms, ratio, bytes_per_iteration_ddtrain.
// Usage: bench_dense_update [threads]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ddtrain/solvers/bfgs.hpp"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double median_ms(F&& f, int repeats) {
  std::vector<double> times;
  for (int k = 0; k < repeats + 1; ++k) {
    const auto t0 = Clock::now();
    f();
    if (k > 0) times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  std::printf("# threads %d; float64; median of repeats\n", threads);
  std::printf("d,ddtrain_ms,libtorch_ms,ratio,ddtrain_mb_per_iteration\n");
  for (int64_t d : {500, 2011, 5000, 10000}) {
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    torch::Tensor m = torch::randn({d, d}, f64) / std::sqrt(static_cast<double>(d));
    torch::Tensor H = m.matmul(m.t()) + torch::eye(d, f64);
    const torch::Tensor s = torch::randn({d}, f64), y = torch::randn({d}, f64), g = torch::randn({d}, f64);
    ddtrain::DenseUpdateCoefficients c;
    c.inverse_tau = 0.999, c.alpha = 1e-6, c.beta = -1e-6, c.gamma = 1e-6;
    const int repeats = d >= 5000 ? 5 : 21;
    torch::Tensor Hd = H.clone();
    const double ours = median_ms([&] {
      const std::vector<torch::Tensor> p = ddtrain::symmetric_products(Hd, {y, g});
      ddtrain::apply_dense_update(Hd, s, p[0], c);
    }, repeats);
    torch::Tensor Ht = H.clone();
    const double plain = median_ms([&] {
      const torch::Tensor direction = Ht.mv(g);
      const torch::Tensor u = Ht.mv(y);
      const torch::Tensor p = u * c.alpha + s * c.beta, q = u * c.beta + s * c.gamma;
      Ht.mul_(c.inverse_tau).addr_(p, u).addr_(q, s);
      (void)direction;
    }, repeats);
    const double megabytes = 3.0 * static_cast<double>(d) * static_cast<double>(d) / 2 * 8 / 1e6;
    std::printf("%lld,%.3f,%.3f,%.2f,%.1f\n", static_cast<long long>(d), ours, plain, plain / ours, megabytes);
    std::fflush(stdout);
  }
  return 0;
}
