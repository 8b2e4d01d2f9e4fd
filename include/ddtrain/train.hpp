#pragma once
// The training driver: loops over epochs and batches, builds the objectives of each batch,
// calls the solver, evaluates the metric, reports through callbacks, decides when to stop.
#include <functional>
#include <optional>
#include <string>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/partition.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/solver.hpp"
#include "ddtrain/summary.hpp"

namespace ddtrain {

struct TrainOptions {
  int64_t epochs = 100;          ///< epoch budget (full-batch problems: one iteration per epoch)
  int64_t max_iterations = 0;    ///< solver-step budget; 0 = none
  /// Wall-time budget of the whole run in seconds (training, metric evaluations and
  /// checkpoints; the closing metric evaluation is reserved for); 0 = none.
  double time_limit_s = 0;
  int64_t batch_size = 100;      ///< mini-batch size (ignored by full-batch problems)
  int data_subdomains = 0;       ///< micro-batches per mini-batch; 0 = data-parallel ranks
  uint64_t seed = 0;             ///< mini-batch order (identical on all ranks)
  int64_t metric_every = 10;     ///< full batch: iterations between metric evaluations (0: end only)
  std::optional<double> target;  ///< stop when the metric reaches this value
  bool broadcast_initial_parameters = true;  ///< rank 0's initial parameters everywhere
  /// Epochs between calls of Callbacks::on_checkpoint (0: only when the run ends).
  int64_t checkpoint_every = 0;
  std::string validate() const;  ///< "" if valid, else the reason
};

/// Where training resumes from (checkpoint restart); defaults start from scratch. The
/// parameters to resume from are the problem's (set them before calling train), the solver's
/// state is the solver's (Solver::load_state).
struct ResumeState {
  int64_t epoch = 0;       ///< the epoch to continue
  int64_t batch = 0;       ///< the next mini-batch within that epoch (0 for full-batch problems)
  int64_t iteration = 0;   ///< solver steps done
  /// Training time so far. A resumed run also starts its whole-run clock (Summary::elapsed_s,
  /// --time-limit) there: the earlier part's metric evaluations are not recorded.
  double wall_time_s = 0;
  EvaluationCounters counters;
  int64_t local_gradient_evaluations = 0;
  double initial_loss = kNaN;
  double final_loss = kNaN;  ///< loss after the last step done
};

/// Progress and control hooks; every member is optional. Called on every rank.
struct Callbacks {
  /// After each solver step (and the metric when it was evaluated). Return false to stop.
  std::function<bool(const IterationSummary&)> on_iteration;
  /// After each epoch, with the current parameters (e.g. checkpointing). Return false to stop.
  std::function<bool(int64_t epoch, const torch::Tensor& x)> on_epoch_end;
  /// Polled once per iteration (e.g. a SIGINT flag); true = stop with kInterrupted. May
  /// differ between ranks: train() combines the ranks' answers (and their time-limit checks)
  /// in one allreduce, so all stop at the same iteration if any rank says true.
  std::function<bool()> interrupted;
  /// Where to continue from and the parameters there: every TrainOptions::checkpoint_every
  /// epochs and once when the run ends (not after a numerical failure), so that any run can be
  /// resumed or extended. Write it with save_checkpoint (ddtrain/checkpoint.hpp).
  std::function<void(const ResumeState& state, const torch::Tensor& x)> on_checkpoint;
};

/// How the ranks are arranged: groups of `data` ranks evaluate one objective data-parallel;
/// the groups own parameter subdomains round-robin and `accumulate` over `across`.
struct Layout {
  CommunicatorPtr world;
  CommunicatorPtr data;    ///< this rank's data-parallel group (shard = data->rank())
  CommunicatorPtr across;  ///< the ranks with the same data rank in every group
  int group = 0;           ///< this rank's group in [0, groups)
  int groups = 1;
};
/// P = groups x data_parallel ranks; consecutive ranks form a group. `data_parallel` must
/// divide the world size (0 = all ranks in one group).
Layout make_layout(CommunicatorPtr world, int data_parallel = 0);


/// Trains the problem's parameters with the solver; never prints, never exits.
Summary train(Problem& problem, Solver& solver, const TrainOptions& options,
              const Layout& layout, const Callbacks& callbacks = {},
              const Partition* partition = nullptr, const ResumeState& resume = {});

}  // namespace ddtrain
