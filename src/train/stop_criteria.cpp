#include "stop_criteria.hpp"

#include <cmath>

#include "ddtrain/error.hpp"

namespace ddtrain::driver {

StopDecision AnyOf::check(const IterationOutcome& outcome) {
  for (const StopCriterionPtr& criterion : criteria_) {
    StopDecision decision = criterion->check(outcome);
    if (decision.stops()) return decision;
  }
  return {};
}

StopDecision NonFinite::check(const IterationOutcome& outcome) {
  if (outcome.finite) return {};
  return {Termination::kNumericalFailure, "the loss or the parameters became non-finite at iteration " +
                                              std::to_string(outcome.iterations) +
                                              "; the last finite parameters are kept"};
}

StopDecision SolverTermination::check(const IterationOutcome& outcome) {
  return {outcome.solver_termination, outcome.solver_message};
}

bool target_reached(const Metric& m, const std::optional<double>& target) {
  if (!target) return false;
  return m.higher_is_better ? m.value >= *target : m.value <= *target;
}

StopDecision TargetReached::check(const IterationOutcome& outcome) {
  if (!outcome.metric || !target_reached(*outcome.metric, target_)) return {};
  return {Termination::kTargetReached, ""};
}

StopDecision UserRequest::check(const IterationOutcome& outcome) {
  if (!outcome.user_requested) return {};
  return {Termination::kUserRequested, ""};
}

StopDecision IterationLimit::check(const IterationOutcome& outcome) {
  if (max_ > 0 && outcome.iterations >= max_) return {Termination::kMaxIterations, ""};
  return {};
}

bool TimeLimit::fires(const IterationOutcome& outcome) {
  return limit_s_ > 0 && elapsed_s_() + outcome.closing_reserve_s >= limit_s_;
}

RankAgreement::RankAgreement(CommunicatorPtr world, std::vector<LocalStopRulePtr> rules)
    : world_(std::move(world)), rules_(std::move(rules)) {
  DDTRAIN_CHECK(rules_.size() <= 3, InvalidArgument, "RankAgreement packs at most 3 rules");
}

StopDecision RankAgreement::check(const IterationOutcome& outcome) {
  // Every rule is observed (each rank's answer is needed even when an earlier rule fired).
  std::vector<double> fired;
  for (const LocalStopRulePtr& rule : rules_) fired.push_back(rule->fires(outcome) ? 1.0 : 0.0);
  if (world_ && world_->size() > 1) {
    // All counts in one scalar allreduce (the scalar path works for every communicator, NCCL
    // included): sum_i count_i * (P + 1)^i, exact in float64 for up to 3 rules.
    const double base = world_->size() + 1.0;
    double packed = 0;
    double weight = 1;
    for (double f : fired) {
      packed += f * weight;
      weight *= base;
    }
    double rest = world_->allreduce_sum(packed);
    for (size_t i = fired.size(); i-- > 1;) {
      weight /= base;
      fired[i] = std::floor(rest / weight);
      rest -= weight * fired[i];
    }
    if (!fired.empty()) fired[0] = rest;
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (fired[i] > 0) return rules_[i]->decision();
  }
  return {};
}

bool LastFiniteIterate::keep_if_finite(double loss) {
  if (!std::isfinite(loss) || !torch::isfinite(x_).all().item<bool>()) {
    x_.copy_(last_);
    return false;
  }
  last_.copy_(x_);
  return true;
}

}  // namespace ddtrain::driver
