#include "run_record.hpp"

#include <cmath>

namespace ddtrain::driver {

RunRecord::RunRecord(const ResumeState& resume) : clock_(resume.wall_time_s) {
  summary_.iterations = resume.iteration;
  summary_.gradient_evaluations = resume.counters.gradient;
  summary_.loss_evaluations = resume.counters.loss_only;
  summary_.local_gradient_evaluations = resume.local_gradient_evaluations;
  summary_.initial_loss = resume.initial_loss;
  summary_.final_loss = resume.final_loss;
}

IterationSummary RunRecord::add_step(const StepSummary& step, bool finite, double epoch_progress) {
  metric_current_ = false;
  ++summary_.iterations;
  summary_.gradient_evaluations += step.gradient_evaluations;
  summary_.local_gradient_evaluations += step.local_gradient_evaluations;
  summary_.loss_evaluations += step.loss_evaluations;
  if (std::isnan(summary_.initial_loss)) summary_.initial_loss = step.loss;
  if (finite) summary_.final_loss = step.loss;

  IterationSummary row;
  row.iteration = summary_.iterations;
  row.epoch = epoch_progress;
  row.loss = step.loss;
  row.step_length = step.step_length;
  row.radius = step.radius;
  row.accepted = step.accepted;
  row.gradient_evaluations = summary_.gradient_evaluations;
  row.local_gradient_evaluations = summary_.local_gradient_evaluations;
  row.loss_evaluations = summary_.loss_evaluations;
  return row;
}

Metric RunRecord::evaluate_metric(Problem& problem, const torch::Tensor& x) {
  Metric m;
  last_metric_s_ = clock_.exclude([&] {
    torch::NoGradGuard no_grad;
    problem.parameters().values().copy_(x);
    m = problem.evaluate();
    summary_.metric_name = m.name;
    summary_.metric = m.value;
  });
  metric_current_ = true;
  return m;
}

void RunRecord::note_target_reached(int64_t epoch) {
  if (!std::isnan(summary_.time_to_target_s)) return;
  summary_.time_to_target_s = clock_.training_s();
  summary_.epochs_to_target = epoch + 1;
}

void RunRecord::stamp_times(IterationSummary& row) const {
  row.wall_time_s = clock_.training_s();
  row.elapsed_s = clock_.elapsed_s();
}

ResumeState RunRecord::resume_state(SchedulePosition next) const {
  ResumeState state;
  state.epoch = next.epoch;
  state.batch = next.batch;
  state.iteration = summary_.iterations;
  state.wall_time_s = clock_.training_s();
  state.counters.gradient = summary_.gradient_evaluations;
  state.counters.loss_only = summary_.loss_evaluations;
  state.local_gradient_evaluations = summary_.local_gradient_evaluations;
  state.initial_loss = summary_.initial_loss;
  state.final_loss = summary_.final_loss;
  return state;
}

Summary RunRecord::finish(Termination termination, const std::string& message, int64_t epochs,
                          Problem& problem, const torch::Tensor& x) {
  summary_.epochs = epochs;
  summary_.termination = termination;
  summary_.message = message.empty() ? to_string(termination) : message;
  summary_.wall_time_s = clock_.training_s();
  problem.parameters().values().copy_(x);
  // The metric at the final parameters (unless the last iteration evaluated it there).
  if (!metric_current_) evaluate_metric(problem, x);
  summary_.elapsed_s = clock_.elapsed_s();
  return summary_;
}

}  // namespace ddtrain::driver
