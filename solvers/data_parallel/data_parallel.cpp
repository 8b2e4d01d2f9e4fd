#include <algorithm>
#include <cmath>
#include <limits>

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/data_parallel.hpp"

namespace ddtrain {

namespace {
void ensure_like(torch::Tensor& t, const torch::Tensor& x) {
  if (!t.defined() || t.sizes() != x.sizes() || t.dtype() != x.dtype() || t.device() != x.device())
    t = torch::zeros_like(x);
}
}  // namespace

StepSummary step(Solver& solver, Objective& objective, torch::Tensor& x) {
  StepContext context;
  context.objective = &objective;
  context.accumulate_comm = std::make_shared<SelfComm>();
  return solver.step(context, x);
}

// ---- SGD ------------------------------------------------------------------------------------

std::string SgdOptions::validate() const {
  if (!(learning_rate > 0)) return "learning_rate must be > 0";
  if (!(momentum >= 0 && momentum < 1)) return "momentum must be in [0, 1)";
  if (nesterov && momentum <= 0) return "nesterov needs momentum > 0";
  if (!(weight_decay >= 0)) return "weight_decay must be >= 0";
  return "";
}

Sgd::Sgd(SgdOptions options) : options_(options) { require_valid(options_.validate()); }

StepSummary Sgd::step(StepContext& context, torch::Tensor& x) {
  ensure_like(gradient_, x);
  StepSummary summary;
  summary.loss = context.objective->evaluate(x, &gradient_);
  summary.gradient_evaluations = 1;
  torch::NoGradGuard no_grad;
  torch::Tensor direction = gradient_;
  if (options_.weight_decay > 0) direction = direction.add(x, options_.weight_decay);
  if (options_.momentum > 0) {
    if (!velocity_.defined()) {
      velocity_ = direction.clone();
    } else {
      velocity_.mul_(options_.momentum).add_(direction);
    }
    direction = options_.nesterov ? direction.add(velocity_, options_.momentum) : velocity_;
  }
  x.add_(direction, -options_.learning_rate);
  summary.step_length = options_.learning_rate;
  return summary;
}

void Sgd::save_state(torch::serialize::OutputArchive& archive) const {
  if (velocity_.defined()) archive.write("sgd.velocity", velocity_);
}
void Sgd::load_state(torch::serialize::InputArchive& archive) {
  torch::Tensor v;
  if (archive.try_read("sgd.velocity", v)) velocity_ = v;
}

// ---- Adam -----------------------------------------------------------------------------------

std::string AdamOptions::validate() const {
  if (!(learning_rate > 0)) return "learning_rate must be > 0";
  if (!(beta1 >= 0 && beta1 < 1)) return "beta1 must be in [0, 1)";
  if (!(beta2 >= 0 && beta2 < 1)) return "beta2 must be in [0, 1)";
  if (!(epsilon > 0)) return "epsilon must be > 0";
  if (!(weight_decay >= 0)) return "weight_decay must be >= 0";
  return "";
}

Adam::Adam(AdamOptions options) : options_(options) { require_valid(options_.validate()); }

void Adam::reset() {
  steps_ = 0;
  first_moment_ = torch::Tensor();
  second_moment_ = torch::Tensor();
}

StepSummary Adam::step(StepContext& context, torch::Tensor& x) {
  ensure_like(gradient_, x);
  ensure_like(first_moment_, x);
  ensure_like(second_moment_, x);
  StepSummary summary;
  summary.loss = context.objective->evaluate(x, &gradient_);
  summary.gradient_evaluations = 1;
  torch::NoGradGuard no_grad;
  ++steps_;
  torch::Tensor g = gradient_;
  if (options_.weight_decay > 0) g = g.add(x, options_.weight_decay);
  first_moment_.mul_(options_.beta1).add_(g, 1 - options_.beta1);
  second_moment_.mul_(options_.beta2).addcmul_(g, g, 1 - options_.beta2);
  const double bias1 = 1 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bias2 = 1 - std::pow(options_.beta2, static_cast<double>(steps_));
  torch::Tensor denominator = (second_moment_.sqrt() / std::sqrt(bias2)).add_(options_.epsilon);
  x.addcdiv_(first_moment_, denominator, -options_.learning_rate / bias1);
  summary.step_length = options_.learning_rate;
  return summary;
}

void Adam::save_state(torch::serialize::OutputArchive& archive) const {
  archive.write("adam.steps", torch::tensor({steps_}, torch::kInt64));
  if (first_moment_.defined()) {
    archive.write("adam.m", first_moment_);
    archive.write("adam.v", second_moment_);
  }
}
void Adam::load_state(torch::serialize::InputArchive& archive) {
  torch::Tensor steps;
  archive.read("adam.steps", steps);
  steps_ = steps.item<int64_t>();
  torch::Tensor m, v;
  if (archive.try_read("adam.m", m) && archive.try_read("adam.v", v)) {
    first_moment_ = m;
    second_moment_ = v;
  }
}

// ---- L-BFGS ---------------------------------------------------------------------------------

std::string LbfgsOptions::validate() const {
  if (history < 1) return "history must be >= 1, got " + std::to_string(history);
  if (!(learning_rate > 0)) return "learning_rate must be > 0";
  if (!(gradient_tolerance >= 0)) return "gradient_tolerance must be >= 0";
  if (!(step_tolerance >= 0)) return "step_tolerance must be >= 0";
  if (!(loss_change_tolerance >= 0)) return "loss_change_tolerance must be >= 0";
  return line_search.validate("line_search.");
}

// The memory is built from a clamped size so that validate() reports a bad --history first.
Lbfgs::Lbfgs(LbfgsOptions options) : options_(options), memory_(std::max(1, options.history)) {
  require_valid(options_.validate());
}

void Lbfgs::reset() {
  memory_.reset();
  cache_.clear();
  iterations_ = 0;
}

StepSummary Lbfgs::step(StepContext& context, torch::Tensor& x) {
  Objective& objective = *context.objective;
  StepSummary summary;
  summary.gradient_evaluations += cache_.fetch(context.batch_id, objective, x, loss_, gradient_);
  if (!line_search_step_proceeds(summary, loss_, gradient_, options_.gradient_tolerance)) return summary;

  LineSearchResult search;
  double slope = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto [direction, descent_slope] = memory_.descent_direction(gradient_);
    slope = descent_slope;
    const double t0 = iterations_ == 0 || memory_.size() == 0
                          ? std::min(1.0, 1.0 / gradient_.abs().sum().item<double>()) *
                                options_.learning_rate
                          : options_.learning_rate;
    search = line_search(objective, x, loss_, gradient_, direction, t0, options_.line_search);
    summary.gradient_evaluations += search.evaluations;
    if (search.decreased) {
      torch::Tensor s = direction * search.step;
      memory_.push(s, search.gradient - gradient_);
      x.add_(direction, search.step);  // exactly the trial point the line search evaluated
      summary.step_length = search.step;
      const double change = std::abs(search.loss - loss_);
      loss_ = search.loss;
      gradient_ = search.gradient;
      const double step_size = s.abs().max().item<double>();
      if (step_size <= options_.step_tolerance) {
        summary.termination = Termination::kConverged;
        summary.message = "step below tolerance";
      } else if (options_.loss_change_tolerance > 0 && change <= options_.loss_change_tolerance) {
        summary.termination = Termination::kConverged;
        summary.message = "loss change below tolerance";
      }
      break;
    }
    if (memory_.size() == 0) break;
    memory_.reset();  // retry once along steepest descent
  }
  ++iterations_;
  summary.loss = loss_;
  summary.gradient_norm = gradient_.norm().item<double>();
  if (!search.decreased) {
    // A predicted decrease below the rounding of f cannot be observed: that is convergence.
    const double rounding = 100 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(loss_));
    if (std::abs(slope) <= rounding) {
      summary.termination = Termination::kConverged;
      summary.message = "no decrease measurable at machine precision";
    } else {
      summary.termination = Termination::kLineSearchFailure;
      summary.message = "line search found no decrease along steepest descent";
    }
  }
  cache_.store(context.batch_id, x, loss_, gradient_);
  return summary;
}

void Lbfgs::save_state(torch::serialize::OutputArchive& archive) const {
  memory_.save(archive, "lbfgs.");
  archive.write("lbfgs.iterations", torch::tensor({iterations_}, torch::kInt64));
}
void Lbfgs::load_state(torch::serialize::InputArchive& archive) {
  memory_.load(archive, "lbfgs.");
  torch::Tensor it;
  archive.read("lbfgs.iterations", it);
  iterations_ = it.item<int64_t>();
  cache_.clear();
}

}  // namespace ddtrain
