#include "batch_objectives.hpp"

namespace ddtrain::driver {

BatchObjectives::BatchObjectives(Problem& problem, const Layout& layout, const Partition* partition,
                                 int micro_batches)
    : problem_(problem), layout_(layout) {
  context_.accumulate_comm = layout.across;
  context_.data_comm = layout.data;
  context_.partition = partition;
  context_.owner = layout.group;
  context_.owners = layout.groups;
  context_.num_data_subdomains = micro_batches;
  if (problem.full_batch()) set_full_batch();
}

StepContext& BatchObjectives::context_for(const Batch& batch) {
  if (batch.indices.defined()) set_mini_batch(batch.indices);
  if (batch.fresh) ++context_.batch_id;
  fill_context();
  return context_;
}

/// Full batch: the shard's share of the global loss, summed over the data ranks. With fixed
/// data blocks (Problem::blocks), one objective per local block, added in block order so that
/// the result does not depend on the number of ranks.
void BatchObjectives::set_full_batch() {
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

/// Mini-batch `indices` split into num_data_subdomains contiguous micro-batches; data rank r
/// owns the micro-batches i with i % D == r.
void BatchObjectives::set_mini_batch(const torch::Tensor& indices) {
  const int count = context_.num_data_subdomains;
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

void BatchObjectives::fill_context() {
  context_.objective = global_.get();
  context_.data_subdomains.clear();
  for (size_t k = 0; k < micro_.size(); ++k) {
    context_.data_subdomains.push_back(
        {micro_indices_[k].index, micro_[k].get(), micro_indices_[k].weight});
  }
}

}  // namespace ddtrain::driver
