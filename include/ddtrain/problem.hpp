#pragma once
// Problem: model + data + sampling + metric. Problems do not know ranks; they are given a
// shard of the data (`Shard`) and evaluate losses on sample indices of the training set.
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <string>

#include "ddtrain/error.hpp"
#include "ddtrain/flat_parameters.hpp"

namespace ddtrain {

/// Which part of the data this process holds.
struct Shard {
  int index = 0;  ///< this process's shard in [0, count)
  int count = 1;  ///< number of shards (data-parallel ranks)
};

/// The part [begin, end) of n items that `shard` holds when they are split into contiguous,
/// balanced pieces (the first n % count shards get one more).
inline Range balanced_share(int64_t n, const Shard& shard) {
  const int64_t base = n / shard.count, extra = n % shard.count;
  const int64_t begin = shard.index * base + std::min<int64_t>(shard.index, extra);
  return {begin, begin + base + (shard.index < extra ? 1 : 0)};
}

/// Rows `rows` of `tensor` (the tensor itself when they are all of it).
inline torch::Tensor rows_of(const torch::Tensor& tensor, const Range& rows) {
  if (rows.begin == 0 && rows.end == tensor.size(0)) return tensor;
  return tensor.narrow(0, rows.begin, rows.size());
}

/// Checks part / parts and returns the rows of n that part_loss(part, parts) covers.
inline Range part_rows(int64_t n, int64_t part, int64_t parts) {
  DDTRAIN_CHECK(parts >= 1 && part >= 0 && part < parts, InvalidArgument, "part ", part, " of ",
                parts, " does not exist");
  return balanced_share(n, Shard{static_cast<int>(part), static_cast<int>(parts)});
}

struct Metric {
  std::string name;  ///< "rel_l2", "accuracy", "mse"
  double value = 0;
  bool higher_is_better = false;
};

class Problem {
 public:
  virtual ~Problem() = default;
  virtual std::string name() const = 0;
  virtual FlatParameters& parameters() = 0;
  virtual torch::nn::Module& model() = 0;

  /// Full-batch problems (PINNs, fits): every iteration uses all local points, and one
  /// iteration is one epoch. Mini-batch problems (classification) sample `batch_size` indices.
  virtual bool full_batch() const = 0;
  /// Number of training samples: local points (full batch) or the whole training set
  /// (mini-batch: every process holds the full index set; batches are split by the driver).
  virtual int64_t num_samples() const = 0;
  /// Total number of training samples over all shards (full batch; = num_samples otherwise).
  virtual int64_t global_num_samples() const { return num_samples(); }
  /// Differentiable loss. Full batch: this shard's SHARE of the global loss (terms divided by
  /// global counts), `indices` undefined. Mini-batch: MEAN loss over the given sample indices.
  virtual torch::Tensor loss(const torch::Tensor& indices) = 0;
  /// The loss of `indices` evaluated by this process alone, with no collective and no side
  /// effect on the model's state: what the data subdomains of SAPTS use, whose local solves run
  /// independently on each rank (and one after another in a serial emulation). Default: loss().
  virtual torch::Tensor local_loss(const torch::Tensor& indices) { return loss(indices); }
  /// True when a sample's loss depends on the other samples of its batch (synchronized batch
  /// norm): then the micro-batch losses do not add up to the mini-batch loss, and SAPTS
  /// evaluates the global objective separately (StepContext::data_subdomains_add_up).
  virtual bool couples_samples() const { return false; }
  /// Fixed data blocks for a rank-count-independent reduction (full batch; `--blocks`): this
  /// process holds blocks [first, first + local) of `total`. total == 0: the problem has none
  /// and loss() is evaluated as one piece.
  struct Blocks {
    int64_t first = 0;
    int64_t local = 0;
    int64_t total = 0;
  };
  virtual Blocks blocks() const { return {}; }
  /// The share of the global loss of local block `i` in [0, blocks().local); the shares of all
  /// blocks of all processes sum to the global loss.
  virtual torch::Tensor block_loss(int64_t i) {
    (void)i;
    return loss(torch::Tensor());
  }
  /// Does a block's loss and gradient come out the same, bit for bit, for any number of
  /// intra-op threads (the fused Allen-Cahn loss)? If not, the driver evaluates each block on
  /// one thread, so that `--blocks` results do not depend on `--threads` either.
  virtual bool blocks_are_thread_invariant() const { return false; }
  /// Full batch: can loss() be cut into parts of this shard's points (part_loss)? Lets the
  /// driver spread the global evaluations of parameter-subdomain groups over all ranks.
  virtual bool splits_points() const { return false; }
  /// The loss of part `part` of `parts` (contiguous, balanced) of this shard's points; the
  /// parts add up to loss() (terms on other point sets, such as soft constraints, go to part
  /// 0). Only where splits_points(); throws InvalidArgument otherwise.
  virtual torch::Tensor part_loss(int64_t part, int64_t parts) {
    (void)part;
    (void)parts;
    throw InvalidArgument("problem '" + name() + "' cannot evaluate a part of its points");
  }
  /// Test metric (rel. L2 error on the reference grid, test accuracy, ...).
  virtual Metric evaluate() = 0;
  /// Problem-specific result files into a run's results directory (e.g. Allen-Cahn's predicted
  /// field, field.csv), written with the current parameters by one process. Default: none.
  virtual void write_outputs(const std::string& directory) { (void)directory; }
  /// Called before each epoch; returns true if the training data changed (resampling).
  virtual bool on_epoch_begin(int64_t epoch) {
    (void)epoch;
    return false;
  }
};

using ProblemPtr = std::unique_ptr<Problem>;

}  // namespace ddtrain
