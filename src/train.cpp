#include "ddtrain/train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ddtrain/error.hpp"

namespace ddtrain {

std::string TrainOptions::validate() const {
  if (epochs < 1) return "--epochs must be >= 1, got " + std::to_string(epochs);
  if (max_iterations < 0) return "--max-iterations must be >= 0";
  if (!(time_limit_s >= 0)) return "--time-limit must be >= 0 seconds";
  if (batch_size < 1) return "--batch-size must be >= 1, got " + std::to_string(batch_size);
  if (data_subdomains < 0) return "--data-subdomains must be >= 0";
  if (metric_every < 0) return "--metric-every must be >= 0";
  if (checkpoint_every < 0) return "--checkpoint-every must be >= 0";
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

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool all_finite(const torch::Tensor& x) { return torch::isfinite(x).all().item<bool>(); }

/// The micro-batches of one mini-batch and the objectives built on them for this rank.
class BatchObjectives {
 public:
  BatchObjectives(Problem& problem, const Layout& layout) : problem_(problem), layout_(layout) {}

  /// Full batch: the shard's share of the global loss, summed over the data ranks.
  /// With fixed data blocks (Problem::blocks), one objective per local block, added in block
  /// order so that the result does not depend on the number of ranks.
  void set_full_batch() {
    micro_.clear();
    micro_indices_.clear();
    block_objectives_.clear();
    const Problem::Blocks blocks = problem_.blocks();
    if (blocks.total == 0) {
      local_ = std::make_unique<LocalObjective>(problem_.parameters(),
                                                [this] { return problem_.loss(torch::Tensor()); });
      global_ = std::make_unique<DistributedObjective>(*local_, layout_.data);
      return;
    }
    std::vector<Objective*> pointers;
    for (int64_t i = 0; i < blocks.local; ++i) {
      block_objectives_.push_back(std::make_unique<LocalObjective>(
          problem_.parameters(), [this, i] { return problem_.block_loss(i); }));
      pointers.push_back(block_objectives_.back().get());
    }
    global_ = std::make_unique<OrderedDistributedObjective>(std::move(pointers), blocks.first,
                                                            blocks.total, layout_.data);
  }

  /// Mini-batch `indices` split into `count` contiguous micro-batches; data rank r owns the
  /// micro-batches i with i % D == r.
  void set_mini_batch(const torch::Tensor& indices, int count) {
    const int64_t b = indices.numel();
    const int data_ranks = layout_.data->size();
    const int me = layout_.data->rank();
    std::vector<torch::Tensor> owned;
    micro_.clear();
    micro_indices_.clear();
    int64_t begin = 0;
    for (int i = 0; i < count; ++i) {
      const int64_t size = b / count + (i < b % count ? 1 : 0);
      torch::Tensor part = indices.narrow(0, begin, size);
      begin += size;
      if (i % data_ranks != me) continue;
      owned.push_back(part);
      micro_indices_.push_back({i, part, static_cast<double>(size) / static_cast<double>(b)});
    }
    owned_ = owned.empty() ? torch::Tensor() : torch::cat(owned);
    const double share = owned_.defined() ? static_cast<double>(owned_.numel()) / b : 0.0;
    local_ = std::make_unique<LocalObjective>(problem_.parameters(), [this, share]() {
      if (!owned_.defined()) return torch::zeros({}, problem_.parameters().options());
      return problem_.loss(owned_) * share;
    });
    global_ = std::make_unique<DistributedObjective>(*local_, layout_.data);
    for (const auto& m : micro_indices_) {
      torch::Tensor idx = m.indices;
      micro_.push_back(std::make_unique<LocalObjective>(problem_.parameters(),
                                                        [this, idx] { return problem_.local_loss(idx); }));
    }
  }

  void fill(StepContext& context) {
    context.objective = global_.get();
    context.data_subdomains.clear();
    for (size_t k = 0; k < micro_.size(); ++k) {
      context.data_subdomains.push_back(
          {micro_indices_[k].index, micro_[k].get(), micro_indices_[k].weight});
    }
  }

 private:
  struct Micro {
    int index;
    torch::Tensor indices;
    double weight;
  };
  Problem& problem_;
  const Layout& layout_;
  torch::Tensor owned_;
  std::vector<Micro> micro_indices_;
  std::unique_ptr<LocalObjective> local_;
  std::unique_ptr<Objective> global_;
  std::vector<std::unique_ptr<LocalObjective>> micro_;
  std::vector<std::unique_ptr<LocalObjective>> block_objectives_;
};

}  // namespace

Summary train(Problem& problem, Solver& solver, const TrainOptions& options, const Layout& layout,
              const Callbacks& callbacks, const Partition* partition, const ResumeState& resume) {
  require_valid(options.validate());
  DDTRAIN_CHECK(!solver.needs_partition() || partition != nullptr, InvalidArgument, "solver '",
                solver.name(), "' needs a parameter partition");

  FlatParameters& parameters = problem.parameters();
  torch::Tensor x = parameters.values().clone();
  if (options.broadcast_initial_parameters) layout.world->broadcast(x, 0);
  torch::Tensor last_good = x.clone();

  const bool full_batch = problem.full_batch();
  const int data_subdomains =
      options.data_subdomains > 0 ? options.data_subdomains : layout.data->size();
  const int64_t n = problem.num_samples();
  if (!full_batch) {
    DDTRAIN_CHECK(std::min<int64_t>(options.batch_size, n) >= data_subdomains, InvalidArgument,
                  "--batch-size ", options.batch_size, " is smaller than the number of micro-batches (",
                  data_subdomains, "): every micro-batch needs at least one sample");
  }

  StepContext context;
  context.accumulate_comm = layout.across;
  context.data_comm = layout.data;
  context.partition = partition;
  context.owner = layout.group;
  context.owners = layout.groups;
  context.num_data_subdomains = data_subdomains;
  BatchObjectives batch(problem, layout);

  Summary summary;
  summary.iterations = resume.iteration;
  summary.gradient_evaluations = resume.counters.gradient;
  summary.loss_evaluations = resume.counters.loss_only;
  summary.local_gradient_evaluations = resume.local_gradient_evaluations;
  summary.initial_loss = resume.initial_loss;
  summary.final_loss = resume.final_loss;
  DDTRAIN_CHECK(resume.epoch >= 0 && resume.batch >= 0 && (full_batch ? resume.batch == 0 : true),
                InvalidArgument, "invalid resume position: epoch ", resume.epoch, ", batch ", resume.batch);
  // Two clocks: the training time (history.csv, time to target: what the solver costs) leaves
  // out the metric evaluations and checkpoints; the elapsed time (what --time-limit bounds)
  // counts everything.
  const double elapsed_before = resume.wall_time_s;
  const auto t0 = Clock::now();
  double excluded = 0;  // metric evaluation and checkpoint time, not charged to training
  auto training_time = [&] { return elapsed_before + seconds_since(t0) - excluded; };
  auto elapsed_time = [&] { return elapsed_before + seconds_since(t0); };
  double last_metric_s = 0;     // how long the last metric evaluation took
  bool metric_current = false;  // the metric was evaluated at the current x

  auto evaluate_metric = [&]() {
    const auto m0 = Clock::now();
    torch::NoGradGuard no_grad;
    parameters.values().copy_(x);
    Metric m = problem.evaluate();
    summary.metric_name = m.name;
    summary.metric = m.value;
    last_metric_s = seconds_since(m0);
    excluded += last_metric_s;
    metric_current = true;
    return m;
  };
  auto target_reached = [&](const Metric& m) {
    if (!options.target) return false;
    return m.higher_is_better ? m.value >= *options.target : m.value <= *options.target;
  };

  // The time limit and the interrupt flag are per-rank observations (clocks, signals and even
  // options may differ); the ranks agree on them in one allreduce every iteration, or a rank
  // stopping alone would leave the others waiting in a collective.
  const bool distributed = layout.world && layout.world->size() > 1;
  auto time_or_interrupt = [&]() {
    const bool timed = options.time_limit_s > 0;
    if (!timed && !callbacks.interrupted && !distributed) return Termination::kRunning;
    // The closing metric evaluation is part of the run: its time is reserved.
    const double closing = metric_current ? 0.0 : last_metric_s;
    double out_of_time = timed && elapsed_time() + closing >= options.time_limit_s ? 1.0 : 0.0;
    double interrupted = callbacks.interrupted && callbacks.interrupted() ? 1.0 : 0.0;
    if (distributed) {
      // Both counts in one scalar allreduce (the scalar path works for every communicator,
      // NCCL included): out_of_time + (P + 1) * interrupted, exact in float64.
      const double base = layout.world->size() + 1.0;
      const double both = layout.world->allreduce_sum(out_of_time + base * interrupted);
      interrupted = std::floor(both / base);
      out_of_time = both - base * interrupted;
    }
    if (out_of_time > 0) return Termination::kTimeLimit;
    return interrupted > 0 ? Termination::kInterrupted : Termination::kRunning;
  };
  Termination stop = Termination::kRunning;
  std::string message;
  int64_t epoch = resume.epoch;
  // Where the run would continue: the epoch and the next batch in it.
  int64_t next_epoch = resume.epoch;
  int64_t next_batch = resume.batch;
  auto checkpoint = [&]() {
    if (!callbacks.on_checkpoint) return;
    ResumeState state;
    state.epoch = next_epoch;
    state.batch = next_batch;
    state.iteration = summary.iterations;
    state.wall_time_s = training_time();
    state.counters.gradient = summary.gradient_evaluations;
    state.counters.loss_only = summary.loss_evaluations;
    state.local_gradient_evaluations = summary.local_gradient_evaluations;
    state.initial_loss = summary.initial_loss;
    state.final_loss = summary.final_loss;
    const auto c0 = Clock::now();
    callbacks.on_checkpoint(state, x);
    excluded += seconds_since(c0);
  };
  if (full_batch) batch.set_full_batch();
  for (; epoch < options.epochs && stop == Termination::kRunning; ++epoch) {
    const bool data_changed = problem.on_epoch_begin(epoch);
    std::vector<torch::Tensor> batches;
    if (full_batch) {
      batches.emplace_back();
      if (data_changed || epoch == resume.epoch) ++context.batch_id;
    } else {
      auto generator = at::detail::createCPUGenerator(options.seed * 1000003ULL + epoch);
      torch::Tensor order = torch::randperm(n, generator, torch::kLong);
      const int64_t batch_size = std::clamp<int64_t>(solver.batch_size(options.batch_size, n), 1,
                                                     std::max<int64_t>(n, 1));
      batches = order.split(batch_size);
      // A last batch too small to give every micro-batch a sample joins the one before it.
      if (batches.size() > 1 && batches.back().numel() < data_subdomains) {
        torch::Tensor tail = torch::cat({batches[batches.size() - 2], batches.back()});
        batches.pop_back();
        batches.back() = tail;
      }
    }
    const size_t first_batch = epoch == resume.epoch ? static_cast<size_t>(resume.batch) : 0;
    DDTRAIN_CHECK(first_batch <= batches.size(), InvalidArgument, "invalid resume position: batch ",
                  first_batch, " of an epoch with ", batches.size(), " batches");
    for (size_t k = first_batch; k < batches.size() && stop == Termination::kRunning; ++k) {
      if (!full_batch) {
        batch.set_mini_batch(batches[k], data_subdomains);
        ++context.batch_id;
      }
      batch.fill(context);
      StepSummary step = solver.step(context, x);
      metric_current = false;
      ++summary.iterations;
      summary.gradient_evaluations += step.gradient_evaluations;
      summary.local_gradient_evaluations += step.local_gradient_evaluations;
      summary.loss_evaluations += step.loss_evaluations;
      if (std::isnan(summary.initial_loss)) summary.initial_loss = step.loss;

      IterationSummary row;
      row.iteration = summary.iterations;
      row.epoch = full_batch ? epoch + 1.0 : epoch + static_cast<double>(k + 1) / batches.size();
      row.loss = step.loss;
      row.step_length = step.step_length;
      row.radius = step.radius;
      row.accepted = step.accepted;
      row.gradient_evaluations = summary.gradient_evaluations;
      row.local_gradient_evaluations = summary.local_gradient_evaluations;
      row.loss_evaluations = summary.loss_evaluations;

      if (k + 1 == batches.size()) {
        next_epoch = epoch + 1;
        next_batch = 0;
      } else {
        next_epoch = epoch;
        next_batch = static_cast<int64_t>(k + 1);
      }
      if (!std::isfinite(step.loss) || !all_finite(x)) {
        x.copy_(last_good);
        metric_current = false;
        stop = Termination::kNumericalFailure;
        message = "the loss or the parameters became non-finite at iteration " +
                  std::to_string(summary.iterations) + "; the last finite parameters are kept";
      } else {
        last_good.copy_(x);
        summary.final_loss = step.loss;
        if (step.termination != Termination::kRunning) {
          stop = step.termination;
          message = step.message;
        }
      }
      const bool last_in_epoch = k + 1 == batches.size();
      const bool metric_due =
          full_batch ? (options.metric_every > 0 && summary.iterations % options.metric_every == 0)
                     : last_in_epoch;
      if (metric_due && stop != Termination::kNumericalFailure) {
        Metric m = evaluate_metric();
        row.metric = m.value;
        if (target_reached(m) && std::isnan(summary.time_to_target_s)) {
          summary.time_to_target_s = training_time();
          summary.epochs_to_target = epoch + 1;
          if (stop == Termination::kRunning) stop = Termination::kTargetReached;
        }
      }
      row.wall_time_s = training_time();
      row.elapsed_s = elapsed_time();
      if (callbacks.on_iteration && !callbacks.on_iteration(row) && stop == Termination::kRunning)
        stop = Termination::kUserRequested;
      if (stop != Termination::kRunning) break;
      if (options.max_iterations > 0 && summary.iterations >= options.max_iterations) {
        stop = Termination::kMaxIterations;
      } else {
        stop = time_or_interrupt();
        if (stop == Termination::kInterrupted) message = "interrupted by a signal";
      }
    }
    if (stop == Termination::kRunning || stop == Termination::kMaxIterations ||
        stop == Termination::kTimeLimit || stop == Termination::kInterrupted) {
      if (callbacks.on_epoch_end && !callbacks.on_epoch_end(epoch + 1, x) &&
          stop == Termination::kRunning)
        stop = Termination::kUserRequested;
      if (stop == Termination::kRunning && options.checkpoint_every > 0 &&
          (epoch + 1) % options.checkpoint_every == 0 && epoch + 1 < options.epochs)
        checkpoint();
    }
  }
  if (stop == Termination::kRunning) stop = Termination::kMaxEpochs;
  if (stop != Termination::kNumericalFailure) checkpoint();
  summary.epochs = epoch;
  summary.termination = stop;
  summary.message = message.empty() ? to_string(stop) : message;
  summary.wall_time_s = training_time();
  parameters.values().copy_(x);
  // The metric at the final parameters (unless the last iteration evaluated it there).
  if (!metric_current) evaluate_metric();
  summary.elapsed_s = elapsed_time();
  return summary;
}

}  // namespace ddtrain
