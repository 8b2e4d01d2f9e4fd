#include "ddtrain/solvers/bfgs.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ddtrain/error.hpp"
#include "ddtrain/enum_names.hpp"
#include "ddtrain/solvers/host_values.hpp"

namespace ddtrain {

namespace {

constexpr NameTable<DenseUpdate, 5> kUpdateNames{{{DenseUpdate::kBfgs, "bfgs"},
                                                   {DenseUpdate::kSsbfgsOl, "ssbfgs-ol"},
                                                   {DenseUpdate::kSsbfgsAb, "ssbfgs-ab"},
                                                   {DenseUpdate::kSsbroyden1, "ssbroyden1"},
                                                   {DenseUpdate::kSsbroyden2, "ssbroyden2"}}};

/// BFGS after H <- H / tau, written for the unscaled u = H y: H/tau - rho (s u' + u s') / tau +
/// rho (1 + h / tau) s s', h = rho y'Hy.
DenseUpdateCoefficients scaled_bfgs(double rho, double h, double inverse_tau) {
  DenseUpdateCoefficients c;
  c.inverse_tau = inverse_tau;
  c.beta = -rho * inverse_tau;
  c.gamma = rho * (1 + h * inverse_tau);
  c.scaled = inverse_tau != 1;
  return c;
}

/// theta of SSBroyden1/2 (§6), given a = b h - 1 > 0, b > 0.
double broyden_theta(DenseUpdate update, double a, double b, double h) {
  const double root = std::sqrt(std::abs(a) / (1 + a));
  const double rho_minus = std::min(1.0, h * (1 - root));
  const double theta_minus = (rho_minus - 1) / a;
  if (update == DenseUpdate::kSsbroyden2) {
    const double theta_plus = 1 / rho_minus;
    return std::max(theta_minus, std::min(theta_plus, (1 - b) / b));
  }
  if (b == 1) return theta_minus;
  const double theta_sr1 = 1 / (1 - b);
  if (b > 1) return std::max(theta_minus, theta_sr1);
  const double theta_plus = std::max(1.0, b * (1 + root));
  return std::min(theta_plus, theta_sr1);
}

}  // namespace

DenseUpdate parse_dense_update(const std::string& name, const std::string& option) {
  return parse_name(kUpdateNames, name, option);
}
std::string to_string(DenseUpdate update) { return name_of(kUpdateNames, update); }

DenseUpdateCoefficients dense_update_coefficients(DenseUpdate update, double ys, double yhy, double b,
                                                  bool first, int64_t d) {
  const double rho = 1 / ys, h = rho * yhy;
  switch (update) {
    case DenseUpdate::kBfgs:
      // First update: H0 = (s'y / y'y) I, i.e. tau = h (y'Hy = y'y while H = I).
      return scaled_bfgs(rho, h, first ? 1 / h : 1.0);
    case DenseUpdate::kSsbfgsOl:
      if (!(b > 0)) return scaled_bfgs(rho, h, 1.0);
      return scaled_bfgs(rho, h, b);  // tau = 1 / b
    case DenseUpdate::kSsbfgsAb:
      if (!(b > 0)) return scaled_bfgs(rho, h, 1.0);
      return scaled_bfgs(rho, h, 1 / std::min(1.0, 1 / b));  // tau = min(1, 1 / b)
    case DenseUpdate::kSsbroyden1:
    case DenseUpdate::kSsbroyden2: {
      const double a = b * h - 1;
      // The model is exact along s (a ~ 0: theta- = 0/0) or b is not a curvature: plain BFGS.
      if (!(b > 0) || !(std::abs(a) > 1e-12) || !std::isfinite(a)) return scaled_bfgs(rho, h, 1.0);
      const double theta = broyden_theta(update, a, b, h);
      const double sigma = 1 + a * theta;
      double tau;
      if (first) {
        tau = h / sigma;
      } else {
        const double sigma_tilde = std::pow(std::abs(sigma), 1.0 / (1.0 - static_cast<double>(d)));
        const double rho_hat = std::min(1.0, 1 / b);
        tau = theta <= 0 ? std::min(rho_hat * sigma_tilde, sigma) : rho_hat * std::min(sigma_tilde, 1 / theta);
      }
      const double phi = (1 - theta) / sigma;
      if (!(tau > 0) || !std::isfinite(tau) || !std::isfinite(phi)) return scaled_bfgs(rho, h, 1.0);
      // [H - u u'/y'Hy + phi y'Hy v v'] / tau + rho s s', v = rho s - u / y'Hy, expanded.
      DenseUpdateCoefficients c;
      c.inverse_tau = 1 / tau;
      c.alpha = (phi - 1) / (yhy * tau);
      c.beta = -phi * rho / tau;
      c.gamma = rho * (phi * h / tau + 1);
      c.scaled = tau != 1;
      return c;
    }
  }
  return scaled_bfgs(rho, h, 1.0);
}

namespace {

/// Rows i and d-1-i together hold d+1 entries of the upper triangle: pairs balance the work.
int64_t row_pairs(int64_t d) { return (d + 1) / 2; }
int64_t block_begin(int64_t d, int64_t block) { return row_pairs(d) * block / kDenseBlocks; }

/// Block b's partial products (its rows' upper-triangle entries and their mirrors) into
/// table[b] (k x d, zeroed by the caller), for the blocks [first, last).
template <typename T>
void product_blocks_cpu(const T* h, int64_t d, const std::vector<const T*>& v, T* table, int64_t first,
                        int64_t last) {
  const int64_t k = static_cast<int64_t>(v.size());
  at::parallel_for(first, last, 1, [&](int64_t first_block, int64_t last_block) {
    for (int64_t block = first_block; block < last_block; ++block) {
      T* acc = table + block * k * d;
      auto row = [&](int64_t i) {
        const T* hi = h + i * d;
        for (int64_t m = 0; m < k; ++m) {
          const T* vm = v[m];
          T* am = acc + m * d;
          const T vi = vm[i];
          T dot = hi[i] * vi;
          _Pragma("omp simd reduction(+ : dot)")
          for (int64_t j = i + 1; j < d; ++j) {
            dot += hi[j] * vm[j];
            am[j] += hi[j] * vi;  // the lower triangle's H_ji = H_ij
          }
          am[i] += dot;
        }
      };
      for (int64_t p = block_begin(d, block); p < block_begin(d, block + 1); ++p) {
        row(p);
        if (d - 1 - p != p) row(d - 1 - p);
      }
    }
  });
}

}  // namespace

BlockRange dense_blocks_of(int rank, int ranks) {
  return {kDenseBlocks * rank / ranks, kDenseBlocks * (rank + 1) / ranks};
}

torch::Tensor symmetric_product_blocks(const torch::Tensor& H, const std::vector<torch::Tensor>& vectors,
                                       BlockRange blocks) {
  torch::NoGradGuard no_grad;
  DDTRAIN_CHECK(H.device().is_cpu() && H.is_contiguous(), InvalidArgument,
                "symmetric_product_blocks needs a contiguous CPU matrix");
  const int64_t d = H.size(0), k = static_cast<int64_t>(vectors.size());
  torch::Tensor table = torch::zeros({kDenseBlocks, k, d}, H.options());
  std::vector<torch::Tensor> contiguous;
  for (const torch::Tensor& v : vectors) contiguous.push_back(v.contiguous());
  AT_DISPATCH_FLOATING_TYPES(H.scalar_type(), "symmetric_product_blocks", [&] {
    std::vector<const scalar_t*> v;
    for (const torch::Tensor& c : contiguous) v.push_back(c.data_ptr<scalar_t>());
    product_blocks_cpu<scalar_t>(H.data_ptr<scalar_t>(), d, v, table.data_ptr<scalar_t>(), blocks.first,
                                 blocks.last);
  });
  return table;
}

std::vector<torch::Tensor> sum_product_blocks(const torch::Tensor& table) {
  torch::Tensor sum = table[0].clone();
  for (int64_t block = 1; block < table.size(0); ++block) sum.add_(table[block]);  // in block order
  std::vector<torch::Tensor> out;
  for (int64_t m = 0; m < sum.size(0); ++m) out.push_back(sum[m]);
  return out;
}

std::vector<torch::Tensor> symmetric_products(const torch::Tensor& H, const std::vector<torch::Tensor>& vectors) {
  torch::NoGradGuard no_grad;
  if (!H.device().is_cpu() || !H.is_contiguous()) {
    const torch::Tensor products = H.mm(torch::stack(vectors, 1));
    std::vector<torch::Tensor> out;
    for (size_t m = 0; m < vectors.size(); ++m) out.push_back(products.select(1, static_cast<int64_t>(m)));
    return out;
  }
  return sum_product_blocks(symmetric_product_blocks(H, vectors, {0, kDenseBlocks}));
}

torch::Tensor full_symmetric(const torch::Tensor& H) {
  if (!H.device().is_cpu()) return H.clone();
  return H.triu() + H.triu(1).t();
}

void apply_dense_update(torch::Tensor& H, const torch::Tensor& s, const torch::Tensor& u,
                        const DenseUpdateCoefficients& c, BlockRange blocks) {
  torch::NoGradGuard no_grad;
  // Row i: H_ij = H_ij / tau + p_i u_j + q_i s_j, p = alpha u + beta s, q = beta u + gamma s.
  const torch::Tensor p = u * c.alpha + s * c.beta;
  const torch::Tensor q = u * c.beta + s * c.gamma;
  if (!H.device().is_cpu() || !H.is_contiguous()) {
    H.mul_(c.inverse_tau).addr_(p, u).addr_(q, s);
    return;
  }
  const torch::Tensor uc = u.contiguous(), sc = s.contiguous(), pc = p.contiguous(), qc = q.contiguous();
  const int64_t d = H.size(0);
  AT_DISPATCH_FLOATING_TYPES(H.scalar_type(), "apply_dense_update", [&] {
    scalar_t* h = H.data_ptr<scalar_t>();
    const scalar_t* uj = uc.data_ptr<scalar_t>();
    const scalar_t* sj = sc.data_ptr<scalar_t>();
    const scalar_t* pi = pc.data_ptr<scalar_t>();
    const scalar_t* qi = qc.data_ptr<scalar_t>();
    const scalar_t scale = static_cast<scalar_t>(c.inverse_tau);
    auto row = [&](int64_t i) {
      scalar_t* hi = h + i * d;
      const scalar_t a = pi[i], b = qi[i];
      _Pragma("omp simd")
      for (int64_t j = i; j < d; ++j) hi[j] = hi[j] * scale + a * uj[j] + b * sj[j];
    };
    at::parallel_for(block_begin(d, blocks.first), block_begin(d, blocks.last), 8, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        row(p);
        if (d - 1 - p != p) row(d - 1 - p);
      }
    });
  });
}

int64_t default_dense_memory_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return int64_t{4} << 30;
  return static_cast<int64_t>(pages) * page / 4;
}

int64_t dense_memory_limit_or_default(int64_t memory_limit_bytes) {
  return memory_limit_bytes > 0 ? memory_limit_bytes : default_dense_memory_limit();
}

int64_t dense_bytes_needed(int64_t d, int64_t element_size) {
  return (d * d + 12 * d) * element_size;  // H, and the vectors of one iteration
}

std::string format_megabytes(int64_t bytes) {
  char buffer[32];
  // Below 1 MB three significant digits, so that a small limit (0.01 MB) is not shown as 0.0 MB.
  const double megabytes = static_cast<double>(bytes) / 1e6;
  std::snprintf(buffer, sizeof(buffer), megabytes >= 1 ? "%.1f MB" : "%.3g MB", megabytes);
  return buffer;
}

std::string BfgsOptions::validate() const {
  if (!(gradient_tolerance >= 0)) return "gradient_tolerance must be >= 0";
  if (!(step_tolerance >= 0)) return "step_tolerance must be >= 0";
  if (!(curvature_epsilon >= 0)) return "curvature_epsilon must be >= 0";
  if (memory_limit_bytes < 0) return "memory_limit_bytes must be >= 0";
  return line_search.validate("line_search.");
}

BfgsOptions::BfgsOptions() {
  // Stop zooming only when the step no longer changes x (parameters are O(1)): the default 1e-9
  // ends searches long before the 1e-10-class steps of a converging dense quasi-Newton.
  line_search.tolerance_change = 1e-16;
}

Bfgs::Bfgs(BfgsOptions options) : options_(options) { require_valid(options_.validate()); }

void Bfgs::reset() {
  H_ = torch::Tensor();
  identity_ = true;
  cache_.clear();
  next_direction_ = direction_gradient_ = torch::Tensor();
  skipped_ = restarts_ = scaled_ = failed_searches_ = iterations_ = 0;
}

// ---- DenseInverseHessian ----------------------------------------------------------------------

DenseInverseHessian::DenseInverseHessian(DenseUpdate update, double curvature_epsilon)
    : update_(update), epsilon_(curvature_epsilon) {}

void DenseInverseHessian::ensure(const torch::Tensor& x, int64_t memory_limit_bytes, const std::string& option) {
  const int64_t d = x.numel();
  if (H_.defined() && H_.size(0) == d && H_.dtype() == x.dtype() && H_.device() == x.device()) return;
  const int64_t limit = dense_memory_limit_or_default(memory_limit_bytes);
  const int64_t needed = dense_bytes_needed(d, static_cast<int64_t>(x.element_size()));
  DDTRAIN_CHECK(needed <= limit, InvalidArgument, option, ": the dense inverse Hessian of ", d,
                " parameters needs ", format_megabytes(needed), " but the limit is ", format_megabytes(limit));
  H_ = torch::eye(d, x.options());
  identity_ = true;
}

bool DenseInverseHessian::push(const torch::Tensor& s, const torch::Tensor& y, const torch::Tensor& Bs) {
  // H y before the curvature test (wasted only on a skipped pair), so that every scalar comes
  // to the host in one copy. s'Bs with B = I while H is; unknown B s: NaN, answered by the
  // plain BFGS update.
  const torch::Tensor u = symmetric_products(H_, {y})[0];
  const torch::Tensor sBs = identity_ ? s.dot(s) : Bs.defined() ? s.dot(Bs) : torch::full({}, kNaN, s.options());
  const auto [ys, y_norm, s_norm, yhy, s_b_s] = host_values(y.dot(s), y.norm(), s.norm(), y.dot(u), sBs);
  if (!(ys > 0 && ys > epsilon_ * y_norm * s_norm)) {
    ++skipped_;
    return false;
  }
  const double b = s_b_s / ys;  // s'Bs / y's
  const DenseUpdateCoefficients c = dense_update_coefficients(update_, ys, yhy, b, identity_, s.numel());
  apply_dense_update(H_, s, u, c);
  identity_ = false;
  if (c.scaled) ++scaled_;
  return true;
}

LbfgsMemory::Direction DenseInverseHessian::descent_direction(const torch::Tensor& g) {
  LbfgsMemory::Direction d{symmetric_products(H_, {g})[0].neg_(), 0};
  d.slope = g.dot(d.direction).item<double>();
  if (!(d.slope < 0) && !identity_) {
    reset();
    ++restarts_;
    d.direction = g.neg();
    d.slope = -g.dot(g).item<double>();
  }
  return d;
}

void DenseInverseHessian::reset() {
  if (H_.defined()) H_ = torch::eye(H_.size(0), H_.options());
  identity_ = true;
}

void DenseInverseHessian::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "counters",
                torch::tensor({skipped_, restarts_, scaled_, static_cast<int64_t>(identity_)}, torch::kInt64));
  if (H_.defined()) archive.write(prefix + "H", H_);
}

void DenseInverseHessian::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  torch::Tensor counters;
  archive.read(prefix + "counters", counters);
  DDTRAIN_CHECK(counters.numel() == 4, IoError, "checkpoint: ", prefix, "counters has ", counters.numel(),
                " entries, expected 4");
  const auto* c = counters.data_ptr<int64_t>();
  skipped_ = c[0], restarts_ = c[1], scaled_ = c[2], identity_ = c[3] != 0;
  torch::Tensor H;
  H_ = archive.try_read(prefix + "H", H) ? H : torch::Tensor();
}

// ---- Bfgs -------------------------------------------------------------------------------------

void Bfgs::reset_to_identity(const torch::Tensor& x) {
  H_ = torch::eye(x.numel(), x.options());
  identity_ = true;
  next_direction_ = direction_gradient_ = torch::Tensor();
}

void Bfgs::ensure_inverse_hessian(const torch::Tensor& x) {
  const int64_t d = x.numel();
  if (H_.defined() && H_.size(0) == d && H_.dtype() == x.dtype() && H_.device() == x.device()) return;
  const int64_t limit = dense_memory_limit_or_default(options_.memory_limit_bytes);
  const int64_t needed = dense_bytes_needed(d, static_cast<int64_t>(x.element_size()));
  DDTRAIN_CHECK(needed <= limit, InvalidArgument, "--solver bfgs: the dense inverse Hessian of ", d,
                " parameters needs ", format_megabytes(needed), " but --dense-memory-limit is ",
                format_megabytes(limit),
                "; use a smaller network, --solver lbfgs, or plbfgs over parameter subdomains");
  reset_to_identity(x);
}

BlockRange Bfgs::my_blocks(Communicator* comm) const {
  if (!comm || comm->size() == 1 || !H_.device().is_cpu()) return {};
  return dense_blocks_of(comm->rank(), comm->size());
}

std::vector<torch::Tensor> Bfgs::products(const std::vector<torch::Tensor>& vectors, Communicator* comm) const {
  if (!comm || comm->size() == 1 || !H_.device().is_cpu()) return symmetric_products(H_, vectors);
  torch::Tensor table = symmetric_product_blocks(H_, vectors, my_blocks(comm));
  comm->allreduce_sum(table);  // exact: each block's entries come from one rank, zeros elsewhere
  return sum_product_blocks(table);
}

StepSummary Bfgs::step(StepContext& context, torch::Tensor& x) {
  Objective& objective = *context.objective;
  // The data-parallel ranks share H's rows (null: this process alone).
  Communicator* comm = context.data_comm.get();
  StepSummary summary;
  ensure_inverse_hessian(x);
  summary.gradient_evaluations += cache_.fetch(context.batch_id, objective, x, loss_, gradient_);
  if (!line_search_step_proceeds(summary, loss_, gradient_, options_.gradient_tolerance)) return summary;

  LineSearchResult search;
  // -H g from the last update's formula when it was made for this very gradient (also after a
  // resume: the checkpoint holds both), else one pass over H.
  const bool direction_known = next_direction_.defined() && direction_gradient_.sizes() == gradient_.sizes() &&
                               torch::equal(direction_gradient_, gradient_);
  torch::Tensor direction =
      direction_known ? next_direction_ : products({gradient_}, comm)[0].neg_();
  next_direction_ = direction_gradient_ = torch::Tensor();
  double slope = gradient_.dot(direction).item<double>();
  if (!(slope < 0) && !identity_) {  // H lost positive definiteness: restart from I
    reset_to_identity(x);
    ++restarts_;
    direction = gradient_.neg();
    slope = -gradient_.dot(gradient_).item<double>();
  }
  // From I the first trial is scaled so that the step is at most 1 in l1 norm (as L-BFGS).
  auto first_trial = [&] { return std::min(1.0, 1.0 / gradient_.abs().sum().item<double>()); };
  search = line_search(objective, x, loss_, gradient_, direction, identity_ ? first_trial() : 1.0,
                       options_.line_search);
  summary.gradient_evaluations += search.evaluations;
  double quasi_newton_slope = slope;
  bool along_gradient = identity_;  // the direction is -g (then s'Bs = -t s'g needs H = I)
  if (!search.decreased && !identity_) {
    // Retry once along steepest descent, keeping H: its curvature is hard-won, and the pair of
    // a successful retry updates it as usual.
    ++failed_searches_;
    direction = gradient_.neg();
    slope = -gradient_.dot(gradient_).item<double>();
    search = line_search(objective, x, loss_, gradient_, direction, first_trial(), options_.line_search);
    summary.gradient_evaluations += search.evaluations;
    along_gradient = true;
  }
  ++iterations_;
  if (search.decreased) {
    const torch::Tensor s = direction * search.step;
    const torch::Tensor y = search.gradient - gradient_;
    const torch::Tensor& g_new = search.gradient;
    // One pass over H for both H y and H g+ (the next direction, updated below by formula).
    const std::vector<torch::Tensor> hy_hg = products({y, g_new}, comm);
    const torch::Tensor &u = hy_hg[0], &w = hy_hg[1];
    // Every scalar the update and the stopping test need, in one device-to-host copy.
    const auto [ys, s_g, y_norm, s_norm, yhy, ug, sg, step_max] =
        host_values(y.dot(s), s.dot(gradient_), y.norm(), s.norm(), y.dot(u), u.dot(g_new), s.dot(g_new),
                    s.abs().max());
    if (ys > options_.curvature_epsilon * y_norm * s_norm && ys > 0) {
      // b = s'Bs / y's with B = H^-1: -t s'g / y's for s = t p, p = -H g. After a retry along -g
      // with H != I it is unknown: the self-scaled rules then make the plain BFGS update.
      const bool b_known = !along_gradient || identity_;
      const double b = b_known ? -search.step * s_g / ys : kNaN;
      const DenseUpdateCoefficients c =
          dense_update_coefficients(options_.update, ys, yhy, b, identity_, x.numel());
      apply_dense_update(H_, s, u, c, my_blocks(comm));
      identity_ = false;
      if (c.scaled) ++scaled_;
      // H+ g+ = H g+ / tau + alpha u (u'g+) + beta (s (u'g+) + u (s'g+)) + gamma s (s'g+).
      next_direction_ = (w * c.inverse_tau)
                            .add_(u, c.alpha * ug + c.beta * sg)
                            .add_(s, c.beta * ug + c.gamma * sg)
                            .neg_();
    } else {
      ++skipped_;
      next_direction_ = w.neg();
    }
    direction_gradient_ = g_new;
    x.add_(direction, search.step);  // exactly the trial point the line search evaluated
    summary.step_length = search.step;
    loss_ = search.loss;
    gradient_ = search.gradient;
    if (step_max <= options_.step_tolerance) {
      // A vanishing step from a curved H is H's fault (e.g. after the points were redrawn):
      // restart from I. From I it is convergence.
      if (identity_ || along_gradient) {
        summary.termination = Termination::kConverged;
        summary.message = "step below tolerance";
      } else {
        reset_to_identity(x);
        ++restarts_;
      }
    }
  } else {
    const double epsilon = x.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::epsilon()
                                                              : std::numeric_limits<float>::epsilon();
    const double rounding = 100 * epsilon * std::max(1.0, std::abs(loss_));
    // The predicted decrease of the quasi-Newton step (what the model of f promises) or of the
    // gradient step is below the rounding of f: that is convergence to working precision.
    if (std::min(std::abs(quasi_newton_slope), std::abs(slope)) <= rounding) {
      summary.termination = Termination::kConverged;
      summary.message = "no decrease measurable at machine precision";
    } else {
      summary.termination = Termination::kLineSearchFailure;
      summary.message = "line search found no decrease, also along steepest descent";
    }
  }
  summary.loss = loss_;
  summary.gradient_norm = gradient_.norm().item<double>();
  cache_.store(context.batch_id, x, loss_, gradient_);
  return summary;
}

std::vector<std::pair<std::string, int64_t>> Bfgs::counters() const {
  return {{"skipped_updates", skipped_}, {"restarts", restarts_}, {"scaled_updates", scaled_},
          {"failed_searches", failed_searches_}};
}

void Bfgs::save_state(torch::serialize::OutputArchive& archive) const {
  archive.write("bfgs.counters", torch::tensor({iterations_, skipped_, restarts_, scaled_,
                                                static_cast<int64_t>(identity_), failed_searches_},
                                               torch::kInt64));
  if (H_.defined()) archive.write("bfgs.H", H_);
  if (next_direction_.defined()) {
    archive.write("bfgs.next_direction", next_direction_);
    archive.write("bfgs.direction_gradient", direction_gradient_);
  }
}

void Bfgs::load_state(torch::serialize::InputArchive& archive) {
  torch::Tensor counters;
  archive.read("bfgs.counters", counters);
  DDTRAIN_CHECK(counters.numel() == 6, IoError, "checkpoint: bfgs.counters has ", counters.numel(),
                " entries, expected 6");
  const auto* c = counters.data_ptr<int64_t>();
  iterations_ = c[0], skipped_ = c[1], restarts_ = c[2], scaled_ = c[3], identity_ = c[4] != 0;
  failed_searches_ = c[5];
  torch::Tensor H;
  H_ = archive.try_read("bfgs.H", H) ? H : torch::Tensor();
  cache_.clear();
  torch::Tensor direction, gradient;
  const bool has_direction = archive.try_read("bfgs.next_direction", direction) &&
                             archive.try_read("bfgs.direction_gradient", gradient);
  next_direction_ = has_direction ? direction : torch::Tensor();
  direction_gradient_ = has_direction ? gradient : torch::Tensor();
}

}  // namespace ddtrain
