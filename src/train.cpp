#include "ddtrain/train.hpp"

#include <algorithm>

#include "ddtrain/error.hpp"
#include "train/batch_objectives.hpp"
#include "train/batch_schedule.hpp"
#include "train/run_record.hpp"
#include "train/stop_criteria.hpp"

namespace ddtrain {

std::string TrainOptions::validate() const {
  if (epochs < 1) return "epochs must be >= 1, got " + std::to_string(epochs);
  if (max_iterations < 0) return "max_iterations must be >= 0";
  if (!(time_limit_s >= 0)) return "time_limit_s must be >= 0 seconds";
  if (batch_size < 1) return "batch_size must be >= 1, got " + std::to_string(batch_size);
  if (data_subdomains < 0) return "data_subdomains must be >= 0";
  if (metric_every < 0) return "metric_every must be >= 0";
  if (checkpoint_every < 0) return "checkpoint_every must be >= 0";
  return "";
}

Layout make_layout(CommunicatorPtr world, int data_parallel) {
  DDTRAIN_CHECK(world != nullptr, InvalidArgument, "make_layout needs a communicator");
  const int p = world->size();
  if (data_parallel == 0) data_parallel = p;
  DDTRAIN_CHECK(data_parallel >= 1 && p % data_parallel == 0, InvalidArgument,
                "--data-parallel ", data_parallel, " must divide the number of ranks (", p, ")");
  Layout layout;
  layout.world = world;
  layout.groups = p / data_parallel;
  layout.group = world->rank() / data_parallel;
  if (layout.groups == 1) {
    layout.data = world;
    layout.across = world->split(world->rank(), 0);
  } else if (data_parallel == 1) {
    layout.data = world->split(world->rank(), 0);
    layout.across = world;
  } else {
    layout.data = world->split(layout.group, world->rank());
    layout.across = world->split(world->rank() % data_parallel, world->rank());
  }
  return layout;
}

namespace {

using namespace driver;

/// The rules that end a run, in precedence order. The time limit and the interrupt flag are
/// per-rank observations (clocks, signals and even options may differ): the ranks agree on them
/// every iteration, or a rank stopping alone would leave the others waiting in a collective.
AnyOf stop_rules(const TrainOptions& options, const Callbacks& callbacks, const Layout& layout,
                 const RunClock& clock) {
  std::vector<LocalStopRulePtr> local;
  local.push_back(std::make_unique<TimeLimit>(options.time_limit_s, [&clock] { return clock.elapsed_s(); }));
  local.push_back(std::make_unique<Interrupt>(callbacks.interrupted));
  std::vector<StopCriterionPtr> rules;
  rules.push_back(std::make_unique<NonFinite>());
  rules.push_back(std::make_unique<SolverTermination>());
  rules.push_back(std::make_unique<TargetReached>(options.target));
  rules.push_back(std::make_unique<UserRequest>());
  rules.push_back(std::make_unique<IterationLimit>(options.max_iterations));
  rules.push_back(std::make_unique<RankAgreement>(layout.world, std::move(local)));
  return AnyOf(std::move(rules));
}

/// A full batch: every `metric_every` iterations (0: at the end only); mini-batches: at the
/// end of each epoch.
bool metric_due(const TrainOptions& options, bool full_batch, const Batch& batch, int64_t iterations) {
  if (!full_batch) return batch.last_in_epoch();
  return options.metric_every > 0 && iterations % options.metric_every == 0;
}

/// Stops that cut an epoch short but still end it (its callback, its checkpoint when running):
/// budgets and signals. The solver's, the target's, a callback's and a failure's do not.
bool ends_epoch(Termination t) {
  return t == Termination::kRunning || t == Termination::kMaxIterations ||
         t == Termination::kTimeLimit || t == Termination::kInterrupted;
}

}  // namespace

Summary train(Problem& problem, Solver& solver, const TrainOptions& options, const Layout& layout,
              const Callbacks& callbacks, const Partition* partition, const ResumeState& resume) {
  require_valid(options.validate());
  DDTRAIN_CHECK(!solver.needs_partition() || partition != nullptr, InvalidArgument, "solver '",
                solver.name(), "' needs a parameter partition");

  torch::Tensor x = problem.parameters().values().clone();
  if (options.broadcast_initial_parameters) layout.world->broadcast(x, 0);
  LastFiniteIterate finite_iterate(x);

  const bool full_batch = problem.full_batch();
  const int micro_batches = options.data_subdomains > 0 ? options.data_subdomains : layout.data->size();
  const int64_t n = problem.num_samples();
  if (!full_batch) {
    DDTRAIN_CHECK(std::min<int64_t>(options.batch_size, n) >= micro_batches, InvalidArgument,
                  "--batch-size ", options.batch_size, " is smaller than the number of micro-batches (",
                  micro_batches, "): every micro-batch needs at least one sample");
  }
  RunRecord record(resume);
  BatchSchedule schedule({full_batch, n, options.seed, micro_batches}, {resume.epoch, resume.batch});
  BatchObjectives objectives(problem, layout, partition, micro_batches);
  AnyOf stop = stop_rules(options, callbacks, layout, record.clock());

  auto checkpoint = [&] {
    if (!callbacks.on_checkpoint) return;
    const ResumeState state = record.resume_state(schedule.position());
    record.clock().exclude([&] { callbacks.on_checkpoint(state, x); });
  };
  StopDecision decision;
  int64_t epoch = resume.epoch;
  for (; epoch < options.epochs && !decision.stops(); ++epoch) {
    const bool data_changed = problem.on_epoch_begin(epoch);
    schedule.start_epoch(epoch, full_batch ? 0 : solver.batch_size(options.batch_size, n), data_changed);
    while (!decision.stops()) {
      const std::optional<Batch> batch = schedule.next();
      if (!batch) break;
      StepContext& context = objectives.context_for(*batch);
      const StepSummary step = solver.step(context, x);

      IterationOutcome outcome;
      outcome.finite = finite_iterate.keep_if_finite(step.loss);
      IterationSummary row = record.add_step(step, outcome.finite, batch->epoch_progress());
      if (outcome.finite && metric_due(options, full_batch, *batch, row.iteration)) {
        outcome.metric = record.evaluate_metric(problem, x);
        row.metric = outcome.metric->value;
        if (target_reached(*outcome.metric, options.target)) record.note_target_reached(epoch);
      }
      record.stamp_times(row);
      outcome.user_requested = callbacks.on_iteration && !callbacks.on_iteration(row);

      outcome.iterations = row.iteration;
      outcome.solver_termination = step.termination;
      outcome.solver_message = step.message;
      outcome.closing_reserve_s = record.closing_reserve_s();
      decision = stop.check(outcome);
    }
    if (ends_epoch(decision.termination)) {
      if (callbacks.on_epoch_end && !callbacks.on_epoch_end(epoch + 1, x) && !decision.stops())
        decision = {Termination::kUserRequested, ""};
      if (!decision.stops() && options.checkpoint_every > 0 &&
          (epoch + 1) % options.checkpoint_every == 0 && epoch + 1 < options.epochs)
        checkpoint();
    }
  }
  if (!decision.stops()) decision.termination = Termination::kMaxEpochs;
  if (decision.termination != Termination::kNumericalFailure) checkpoint();
  return record.finish(decision.termination, decision.message, epoch, problem, x);
}

}  // namespace ddtrain
