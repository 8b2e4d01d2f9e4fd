#pragma once
// Private to train(): which samples each solver step sees, epoch by epoch, and where a
// resumed run continues. Identical on every rank (the order depends only on seed and epoch).
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace ddtrain::driver {

/// Where a run continues: the epoch and the next batch in it (ResumeState's position).
struct SchedulePosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const SchedulePosition& o) const { return epoch == o.epoch && batch == o.batch; }
};

/// One batch of the schedule.
struct Batch {
  int64_t epoch = 0;
  int64_t index = 0;      ///< in its epoch
  int64_t count = 1;      ///< batches in the epoch
  torch::Tensor indices;  ///< the samples; undefined for a full-batch problem
  /// Its objective differs from the previous batch's (new samples, or a full batch whose data
  /// changed or that starts this run): solvers' caches keyed on StepContext::batch_id expire.
  bool fresh = true;
  bool last_in_epoch() const { return index + 1 == count; }
  /// Epochs done after this batch (history.csv's fractional epoch).
  double epoch_progress() const {
    return static_cast<double>(epoch) + static_cast<double>(index + 1) / static_cast<double>(count);
  }
};

struct ScheduleOptions {
  bool full_batch = true;
  int64_t num_samples = 0;
  uint64_t seed = 0;      ///< the mini-batch order of epoch e is randperm(seed * 1000003 + e)
  int micro_batches = 1;  ///< a mini-batch's last batch has at least this many samples
};

/// A full-batch problem: one batch per epoch. A mini-batch problem: a random order of the
/// samples split into batches; a last batch smaller than `micro_batches` joins the one before.
class BatchSchedule {
 public:
  /// Starts at `start` (a checkpoint's position; {0, 0} from scratch). Throws InvalidArgument
  /// on a negative position or a nonzero batch of a full-batch problem.
  BatchSchedule(const ScheduleOptions& options, SchedulePosition start);

  /// Lays out the batches of `epoch` (`batch_size` is clamped to [1, num_samples]; ignored for a
  /// full batch); `data_changed`: the problem resampled its data (Problem::on_epoch_begin).
  /// The run's first epoch starts at the start position's batch (InvalidArgument if the epoch
  /// has fewer batches).
  void start_epoch(int64_t epoch, int64_t batch_size, bool data_changed);
  /// The next batch of the current epoch, or nullopt when the epoch is done.
  std::optional<Batch> next();
  /// Where the run continues after the batches handed out so far.
  SchedulePosition position() const { return position_; }

 private:
  ScheduleOptions options_;
  SchedulePosition start_;
  SchedulePosition position_;
  int64_t epoch_ = 0;
  std::vector<torch::Tensor> batches_;
  size_t next_ = 0;
  bool fresh_epoch_ = false;  // a full batch whose objective is new this epoch
};

}  // namespace ddtrain::driver
