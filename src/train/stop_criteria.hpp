#pragma once
// Private to train(): the rules that end a run, checked after every iteration, composed in
// precedence order (after Ginkgo's stop:: criteria).
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/summary.hpp"

namespace ddtrain::driver {

/// What the criteria see after an iteration.
struct IterationOutcome {
  int64_t iterations = 0;  ///< solver steps so far (a resumed run's included)
  Termination solver_termination = Termination::kRunning;  ///< the step's own verdict
  std::string solver_message;
  bool finite = true;              ///< loss and parameters finite (else rolled back)
  std::optional<Metric> metric;    ///< evaluated after this step, if it was
  bool user_requested = false;     ///< Callbacks::on_iteration returned false
  double closing_reserve_s = 0;    ///< time the closing metric evaluation will take
};

/// Go on (kRunning) or why the run stops; an empty message means to_string(termination).
struct StopDecision {
  Termination termination = Termination::kRunning;
  std::string message;
  bool stops() const { return termination != Termination::kRunning; }
};

/// One rule, identical on every rank.
class StopCriterion {
 public:
  virtual ~StopCriterion() = default;
  virtual StopDecision check(const IterationOutcome& outcome) = 0;
};
using StopCriterionPtr = std::unique_ptr<StopCriterion>;

/// The first of the criteria that stops, in the given order; later ones are not checked.
class AnyOf final : public StopCriterion {
 public:
  explicit AnyOf(std::vector<StopCriterionPtr> criteria) : criteria_(std::move(criteria)) {}
  StopDecision check(const IterationOutcome& outcome) override;

 private:
  std::vector<StopCriterionPtr> criteria_;
};

/// The step left a non-finite loss or parameters (x was rolled back: LastFiniteIterate).
class NonFinite final : public StopCriterion {
 public:
  StopDecision check(const IterationOutcome& outcome) override;
};

/// The solver ended the run itself (converged, line-search failure).
class SolverTermination final : public StopCriterion {
 public:
  StopDecision check(const IterationOutcome& outcome) override;
};

/// Whether metric `m` has reached `target` (in its direction); false without a target.
bool target_reached(const Metric& m, const std::optional<double>& target);

/// The metric, where evaluated, reached the target.
class TargetReached final : public StopCriterion {
 public:
  explicit TargetReached(std::optional<double> target) : target_(target) {}
  StopDecision check(const IterationOutcome& outcome) override;

 private:
  std::optional<double> target_;
};

/// A callback asked to stop.
class UserRequest final : public StopCriterion {
 public:
  StopDecision check(const IterationOutcome& outcome) override;
};

/// The iteration budget is used (0: none).
class IterationLimit final : public StopCriterion {
 public:
  explicit IterationLimit(int64_t max_iterations) : max_(max_iterations) {}
  StopDecision check(const IterationOutcome& outcome) override;

 private:
  int64_t max_;
};

/// A rule whose answer may differ between ranks (a clock, a signal, even options); only
/// RankAgreement checks it, so that all ranks stop at the same iteration.
class LocalStopRule {
 public:
  virtual ~LocalStopRule() = default;
  /// This rank's observation.
  virtual bool fires(const IterationOutcome& outcome) = 0;
  /// How the run stops when the rule fires on any rank.
  virtual StopDecision decision() const = 0;
};
using LocalStopRulePtr = std::unique_ptr<LocalStopRule>;

/// The wall-time budget (elapsed time, closing metric evaluation reserved) is used; 0 = none.
class TimeLimit final : public LocalStopRule {
 public:
  /// `elapsed_s`: the run's elapsed time so far.
  TimeLimit(double limit_s, std::function<double()> elapsed_s)
      : limit_s_(limit_s), elapsed_s_(std::move(elapsed_s)) {}
  bool fires(const IterationOutcome& outcome) override;
  StopDecision decision() const override { return {Termination::kTimeLimit, ""}; }

 private:
  double limit_s_;
  std::function<double()> elapsed_s_;
};

/// The interrupt flag (e.g. SIGINT) is set; an empty function never is.
class Interrupt final : public LocalStopRule {
 public:
  explicit Interrupt(std::function<bool()> interrupted) : interrupted_(std::move(interrupted)) {}
  bool fires(const IterationOutcome& outcome) override { return interrupted_ && interrupted_(); }
  StopDecision decision() const override {
    return {Termination::kInterrupted, "interrupted by a signal"};
  }

 private:
  std::function<bool()> interrupted_;
};

/// Local rules agreed over the ranks in one scalar allreduce per check (every check on more
/// than one rank, since the rules may differ between ranks): the first rule, in the given
/// order, that fires on any rank stops all ranks.
class RankAgreement final : public StopCriterion {
 public:
  /// At most 3 rules (the counts are packed into one float64; see check()).
  RankAgreement(CommunicatorPtr world, std::vector<LocalStopRulePtr> rules);
  StopDecision check(const IterationOutcome& outcome) override;

 private:
  CommunicatorPtr world_;
  std::vector<LocalStopRulePtr> rules_;
};

/// Keeps the last finite iterate: after a step that left a non-finite loss or parameters, x
/// goes back to it.
class LastFiniteIterate {
 public:
  /// Remembers x's current values; x is updated in place by the steps.
  explicit LastFiniteIterate(torch::Tensor& x) : x_(x), last_(x.clone()) {}
  /// True if `loss` and x are finite (x is then remembered); false after restoring x.
  bool keep_if_finite(double loss);

 private:
  torch::Tensor& x_;
  torch::Tensor last_;
};

}  // namespace ddtrain::driver
