#pragma once
/// @file
/// Iteration and run summaries: what solvers and the driver report instead of printing.
#include <cstdint>
#include <limits>
#include <string>

namespace ddtrain {

/// Why a step or a run stopped.
enum class Termination {
  kRunning,             ///< not stopped (a step that may be followed by another)
  kConverged,           ///< gradient / step / loss-change tolerance met
  kMaxEpochs,           ///< epoch budget used
  kMaxIterations,       ///< iteration budget used
  kTimeLimit,           ///< wall-time budget used
  kTargetReached,       ///< metric target reached
  kLineSearchFailure,   ///< no decrease along the search direction
  kNumericalFailure,    ///< the iterate or the loss became non-finite
  kInterrupted,         ///< SIGINT / SIGTERM
  kUserRequested,       ///< a callback asked to stop
};
std::string to_string(Termination t);
/// True for the reasons that are a failure of the run (exit status non-zero).
bool is_failure(Termination t);

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// What one solver step did (one outer iteration).
struct StepSummary {
  double loss = kNaN;            ///< loss at the new iterate (on the step's batch)
  double gradient_norm = kNaN;   ///< norm of the gradient at the new iterate, if known
  double step_length = kNaN;     ///< line-search step t, or ||x_new - x_old||
  double radius = kNaN;          ///< trust-region radius after the step (NaN if none)
  bool accepted = true;          ///< false if a trust-region step was rejected
  int64_t gradient_evaluations = 0;        ///< global (data-parallel) gradient evaluations
  int64_t local_gradient_evaluations = 0;  ///< subdomain-local gradient evaluations (this rank)
  int64_t loss_evaluations = 0;            ///< loss-only evaluations
  Termination termination = Termination::kRunning;
  std::string message;
};

/// One row of history.csv.
struct IterationSummary {
  int64_t iteration = 0;   ///< outer iterations so far (solver steps)
  double epoch = 0;        ///< epochs done (fractional within an epoch)
  double wall_time_s = 0;  ///< training time so far (metric evaluations and checkpoints excluded)
  double elapsed_s = kNaN; ///< wall time of the run so far, everything included (NaN: not known)
  int64_t gradient_evaluations = 0;
  int64_t local_gradient_evaluations = 0;
  int64_t loss_evaluations = 0;
  double loss = kNaN;
  double metric = kNaN;    ///< NaN on rows where the metric was not evaluated
  double step_length = kNaN;
  double radius = kNaN;
  bool accepted = true;
};

/// The result of a training run.
struct Summary {
  Termination termination = Termination::kRunning;
  std::string message;
  int64_t iterations = 0;
  int64_t epochs = 0;
  int64_t gradient_evaluations = 0;
  int64_t local_gradient_evaluations = 0;
  int64_t loss_evaluations = 0;
  double initial_loss = kNaN;
  double final_loss = kNaN;
  std::string metric_name;
  double metric = kNaN;
  double wall_time_s = 0;           ///< training time (metric evaluations and checkpoints excluded)
  double elapsed_s = 0;             ///< wall time of the whole run, everything included
  double time_to_target_s = kNaN;   ///< NaN if the target was not reached (or none given)
  int64_t epochs_to_target = -1;
  bool succeeded() const { return !is_failure(termination); }
};

}  // namespace ddtrain
