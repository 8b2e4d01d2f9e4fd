#pragma once
/// @file
/// Trust-region building blocks (ALGORITHMS.md §3.1) and the mini-batch trust-region solver "tr".
///
///  - TrustRegionOptions: radius, acceptance thresholds, radius update, model choice.
///  - Lsr1Model: limited-memory SR1 matrix B = gamma I + Psi M Psi^T (compact form) and the exact
///    solution of the subproblem  min g'p + 1/2 p'Bp  s.t. ||p|| <= radius  by the
///    orthonormal-basis method (Brust, Erway & Marcia 2017), or the dogleg path.
///  - TrustRegion: radius + model state and ONE complete step on an Objective (propose, trial
///    evaluation, ratio test, accept or reject, radius update, SR1 pair storage).
///  - TrustRegionSolver ("tr"): one or several trust-region steps per mini-batch.
///
/// Every decision is taken from float64 scalars computed from allreduced losses and from
/// gradients that are identical on every rank, so all ranks branch identically.
#include <torch/torch.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ddtrain/objective.hpp"
#include "ddtrain/solver.hpp"
#include "ddtrain/solvers/evaluation_cache.hpp"

namespace ddtrain {

enum class TrustRegionModel {
  kFirstOrder,  ///< B = 0: p = -radius g/||g||, pred = radius ||g||
  kLsr1,        ///< limited-memory SR1, subproblem solved exactly (OBS) or by dogleg
};
TrustRegionModel parse_trust_region_model(const std::string& name);  // "first_order" | "lsr1"
std::string to_string(TrustRegionModel model);

struct TrustRegionOptions {
  double radius = 0.1;         ///< initial radius Delta_0 (--radius)
  double min_radius = 1e-3;    ///< a rejection never shrinks the radius below this (--min-radius)
  double max_radius = 2.0;     ///< an expansion never grows the radius above this (--max-radius)
  double eta1 = 0.25;          ///< accept the step if rho > eta1 (--eta1)
  double eta2 = 0.75;          ///< expand if rho > eta2 and ||p|| >= 0.9 radius (--eta2)
  double increase = 1.2;       ///< expansion factor (--radius-increase; older code 2.0)
  double decrease = 0.9;       ///< shrink factor on rejection (--radius-decrease; older code 0.5)
  TrustRegionModel model = TrustRegionModel::kFirstOrder;  ///< (--tr-model)
  /// L-SR1 pairs (--tr-memory). 5, the top of the 3-5 range of §3.1: in training d >> m, and
  /// more pairs carry more curvature at the cost of 2m flat vectors and m x m work per step.
  /// (On 2-D Rosenbrock, where m > d makes the pairs inconsistent, 3 is slightly better; see
  /// tests/unit/test_trust_region.cpp for the measured iterations.)
  int memory = 5;
  bool dogleg = false;         ///< L-SR1 only: dogleg path instead of the exact OBS step (--dogleg)

  /// The local set of §3.1 (subdomain solves): eta1 0.3, eta2 0.7, increase 1.5, decrease 0.6;
  /// the local radius itself is set by the caller from the global one.
  static TrustRegionOptions local_defaults();
  /// "" if valid, else a one-line message naming the field after `path` (this struct's place in
  /// the options that hold it, e.g. "local.").
  std::string validate(const std::string& path = "") const;
};

/// Solution of  min_p m(p) = g'p + 1/2 p'Bp  s.t. ||p|| <= radius.
struct SubproblemSolution {
  torch::Tensor step;      ///< p (same shape, dtype, device as g)
  double predicted = 0;    ///< pred = -m(p) >= 0
  double norm = 0;         ///< ||p||
  double multiplier = 0;   ///< sigma >= 0 with (B + sigma I) p = -g (exact OBS solution)
  bool on_boundary = false;
  bool hard_case = false;  ///< g orthogonal to the eigenspace of a non-positive lambda_min
};

/// Limited-memory SR1 matrix in compact form, B = gamma I + Psi M Psi^T with Psi = Y - gamma S
/// and M = (D + L + L^T - gamma S^T S)^{-1} (Byrd, Nocedal & Schnabel 1994). The d x m matrices
/// stay flat torch tensors; only m x m matrices go to Eigen (float64). gamma = y'y / |s'y| of the
/// newest pair (0 while the memory is empty, so an empty model is the first-order model B = 0).
/// When M^{-1} is numerically singular the oldest pairs are left out of the factorisation.
class Lsr1Model {
 public:
  /// `tolerance`: a pair is stored only if |s'y| > tol ||s|| ||y|| and |(y - Bs)'s| > tol ||s||
  /// ||y - Bs|| (the classical SR1 safeguard, relative to the norms).
  explicit Lsr1Model(int capacity = 5, double tolerance = 1e-8);
  Lsr1Model(const Lsr1Model&);
  Lsr1Model& operator=(const Lsr1Model&);
  ~Lsr1Model();

  /// Stores (s, y) if it passes the safeguard; returns whether it was stored.
  bool push(const torch::Tensor& s, const torch::Tensor& y);
  void reset();
  int size() const { return static_cast<int>(s_.size()); }
  int capacity() const { return capacity_; }
  int64_t skipped() const { return skipped_; }
  double gamma() const { return gamma_; }
  /// Pairs the current factorisation uses (oldest dropped while M^{-1} is ill-conditioned).
  int pairs_used() const;

  /// B v.
  torch::Tensor multiply(const torch::Tensor& v) const;
  /// v'Bv in float64.
  double quadratic(const torch::Tensor& v) const;
  /// Eigenvalues of B on the span of Psi (ascending); B is gamma on the orthogonal complement.
  std::vector<double> eigenvalues() const;

  /// Exact subproblem solution by the orthonormal-basis method: thin QR of Psi (from the Gram
  /// matrix Psi^T Psi), eigen-decomposition of R M R^T, secular equation in the spectral basis
  /// (safeguarded Newton), hard case handled.
  SubproblemSolution solve(const torch::Tensor& g, double radius) const;
  /// Dogleg path from the Cauchy point towards the quasi-Newton point -B^{-1} g (the Cauchy
  /// point itself when B is not positive definite).
  SubproblemSolution dogleg(const torch::Tensor& g, double radius) const;

  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  struct Factors;
  const Factors& factors() const;
  SubproblemSolution finish(const torch::Tensor& g, torch::Tensor p, double sigma, bool boundary,
                            bool hard) const;

  int capacity_;
  double tolerance_;
  double gamma_ = 0;
  int64_t skipped_ = 0;
  std::vector<torch::Tensor> s_, y_;  // oldest first
  mutable std::unique_ptr<Factors> factors_;  // rebuilt lazily after push / reset
};

/// rho = actual / predicted with the conventions of §3.1: a non-positive or non-finite
/// prediction gives -inf (reject); a prediction below rounding of `loss` gives +inf.
double reduction_ratio(double actual, double predicted, double loss);

/// What one trust-region step did.
struct TrustRegionOutcome {
  bool accepted = false;
  double predicted = 0;    ///< pred of the proposed step
  double actual = 0;       ///< f(x) - f(x + p) (NaN if the trial was not finite)
  double ratio = 0;        ///< rho
  double step_norm = 0;    ///< ||p|| (whether or not accepted)
  bool gradient_valid = true;  ///< the caller's gradient is the gradient at the (new) x
  int gradient_evaluations = 0;
  int loss_evaluations = 0;
};

/// Radius + model state of one trust-region method.
class TrustRegion {
 public:
  explicit TrustRegion(TrustRegionOptions options = {});
  const TrustRegionOptions& options() const { return options_; }
  double radius() const { return radius_; }
  void set_radius(double radius) { radius_ = radius; }
  const Lsr1Model& lsr1() const { return lsr1_; }

  /// The model step for gradient g inside min(radius, cap).
  SubproblemSolution propose(const torch::Tensor& g, double cap = kNoCap) const;
  /// The ratio test and the radius update of §3.1 for a step of length `step_norm` taken with
  /// radius `radius_used`; returns whether the step is accepted. A non-finite `actual` rejects.
  bool update(double actual, double predicted, double loss, double step_norm,
              double radius_used);
  /// One complete step from x, where `loss` and `gradient` are the loss and gradient at x:
  /// proposes p inside min(radius, cap), evaluates f(x + p) (with its gradient if
  /// `gradient_at_trial`), accepts (x, loss and, if evaluated, gradient updated; an SR1 pair
  /// stored) or rejects (x, loss, gradient untouched), and updates the radius. Non-finite trial
  /// values are a rejection. `proposal`: a step computed elsewhere (the combined step of SAPTS /
  /// APTS, with its own pred) to test instead of the model's.
  TrustRegionOutcome step(Objective& objective, torch::Tensor& x, double& loss,
                          torch::Tensor& gradient, bool gradient_at_trial, double cap = kNoCap,
                          const SubproblemSolution* proposal = nullptr);
  /// Radius back to the initial one, memory emptied.
  void reset();
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

  static constexpr double kNoCap = std::numeric_limits<double>::infinity();

 private:
  TrustRegionOptions options_;
  double radius_;
  Lsr1Model lsr1_;
};

struct TrustRegionSolverOptions {
  TrustRegionOptions region;          ///< §3.1 global defaults
  int steps = 1;                      ///< trust-region steps per mini-batch (--global-steps)
  double gradient_tolerance = 1e-12;  ///< converged when max|g| <= this (--gradient-tolerance)
  std::string validate() const;
};

/// "tr": the plain mini-batch trust-region method on the global (data-parallel) objective.
class TrustRegionSolver final : public Solver {
 public:
  explicit TrustRegionSolver(TrustRegionSolverOptions options = {});
  std::string name() const override { return "tr"; }
  StepSummary step(StepContext& context, torch::Tensor& x) override;
  void reset() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;
  const TrustRegion& region() const { return region_; }

 private:
  TrustRegionSolverOptions options_;
  TrustRegion region_;
  EvaluationCache cache_;
};

}  // namespace ddtrain
