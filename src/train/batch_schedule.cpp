#include "batch_schedule.hpp"

#include <algorithm>

#include "ddtrain/error.hpp"

namespace ddtrain::driver {

BatchSchedule::BatchSchedule(const ScheduleOptions& options, SchedulePosition start)
    : options_(options), start_(start), position_(start), epoch_(start.epoch) {
  DDTRAIN_CHECK(start.epoch >= 0 && start.batch >= 0 && (options.full_batch ? start.batch == 0 : true),
                InvalidArgument, "invalid resume position: epoch ", start.epoch, ", batch ", start.batch);
}

void BatchSchedule::start_epoch(int64_t epoch, int64_t batch_size, bool data_changed) {
  epoch_ = epoch;
  batches_.clear();
  const bool first_of_run = epoch == start_.epoch;
  if (options_.full_batch) {
    batches_.emplace_back();
    fresh_epoch_ = data_changed || first_of_run;
  } else {
    const int64_t n = options_.num_samples;
    auto generator = at::detail::createCPUGenerator(options_.seed * 1000003ULL + epoch);
    const torch::Tensor order = torch::randperm(n, generator, torch::kLong);
    batches_ = order.split(std::clamp<int64_t>(batch_size, 1, std::max<int64_t>(n, 1)));
    // A last batch too small to give every micro-batch a sample joins the one before it.
    if (batches_.size() > 1 && batches_.back().numel() < options_.micro_batches) {
      torch::Tensor tail = torch::cat({batches_[batches_.size() - 2], batches_.back()});
      batches_.pop_back();
      batches_.back() = tail;
    }
  }
  next_ = first_of_run ? static_cast<size_t>(start_.batch) : 0;
  DDTRAIN_CHECK(next_ <= batches_.size(), InvalidArgument, "invalid resume position: batch ", next_,
                " of an epoch with ", batches_.size(), " batches");
}

std::optional<Batch> BatchSchedule::next() {
  if (next_ >= batches_.size()) return std::nullopt;
  Batch batch;
  batch.epoch = epoch_;
  batch.index = static_cast<int64_t>(next_);
  batch.count = static_cast<int64_t>(batches_.size());
  batch.indices = batches_[next_];
  batch.fresh = !options_.full_batch || fresh_epoch_;
  ++next_;
  position_ = batch.last_in_epoch() ? SchedulePosition{epoch_ + 1, 0}
                                    : SchedulePosition{epoch_, static_cast<int64_t>(next_)};
  return batch;
}

}  // namespace ddtrain::driver
