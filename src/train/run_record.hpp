#pragma once
// Private to train(): the run's clocks and its Summary, from the resume point to the end.
#include <torch/torch.h>

#include <chrono>

#include "batch_schedule.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/summary.hpp"
#include "ddtrain/train.hpp"

namespace ddtrain::driver {

/// Two clocks: the training time (history.csv, time to target: what the solver costs) leaves
/// out the metric evaluations and checkpoints; the elapsed time (what --time-limit bounds)
/// counts everything. A resumed run starts both at the earlier part's training time.
class RunClock {
 public:
  explicit RunClock(double earlier_s = 0) : earlier_s_(earlier_s), t0_(Clock::now()) {}
  double elapsed_s() const { return earlier_s_ + since(t0_); }
  double training_s() const { return elapsed_s() - excluded_s_; }
  /// Runs `work` and leaves its time out of the training time; returns that time.
  template <typename Work>
  double exclude(Work&& work) {
    const auto w0 = Clock::now();
    work();
    const double spent = since(w0);
    excluded_s_ += spent;
    return spent;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }
  double earlier_s_;
  Clock::time_point t0_;
  double excluded_s_ = 0;
};

/// The Summary's bookkeeping: counters, losses, metric, time to target, and the rows of
/// history.csv; continues a resumed run's counters.
class RunRecord {
 public:
  explicit RunRecord(const ResumeState& resume);

  /// Counts a solver step and returns its history row (times and metric not yet set). Its loss
  /// becomes the final loss only if `finite`.
  IterationSummary add_step(const StepSummary& step, bool finite, double epoch_progress);
  /// The metric at x (written into the problem's parameters); its time is not training time.
  Metric evaluate_metric(Problem& problem, const torch::Tensor& x);
  /// Notes the first time the metric reached the target, in epochs `epoch + 1`.
  void note_target_reached(int64_t epoch);
  /// Sets the row's training and elapsed time (now).
  void stamp_times(IterationSummary& row) const;
  /// Time to reserve for the closing metric evaluation: none if the metric is current.
  double closing_reserve_s() const { return metric_current_ ? 0.0 : last_metric_s_; }
  /// The state a run continuing at `next` needs.
  ResumeState resume_state(SchedulePosition next) const;
  RunClock& clock() { return clock_; }
  /// The summary of a run that stopped for `termination` ("" message: to_string of it) after
  /// `epochs` epochs; leaves x in the problem's parameters and the metric evaluated there.
  Summary finish(Termination termination, const std::string& message, int64_t epochs,
                 Problem& problem, const torch::Tensor& x);

 private:
  Summary summary_;
  RunClock clock_;
  double last_metric_s_ = 0;     // how long the last metric evaluation took
  bool metric_current_ = false;  // the metric was evaluated at the current x
};

}  // namespace ddtrain::driver
