#include "batch_objectives.hpp"

#include "../single_threaded.hpp"

namespace ddtrain::driver {

namespace {

/// An objective evaluated with one intra-op and BLAS thread (forward and backward): the same
/// bits for any `--threads`, where a multi-threaded sum or matrix product would split its
/// additions by thread count.
class SingleThreadedObjective final : public Objective {
 public:
  explicit SingleThreadedObjective(std::unique_ptr<Objective> inner) : inner_(std::move(inner)) {}
  int64_t dimension() const override { return inner_->dimension(); }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    detail::SingleThreadedSection one_thread;
    return inner_->evaluate(x, gradient);
  }
  torch::Tensor initial_point() const override { return inner_->initial_point(); }
  void set_active(const std::vector<Range>& active) override { inner_->set_active(active); }
  void commit(const torch::Tensor& x) override { inner_->commit(x); }

 private:
  std::unique_ptr<Objective> inner_;
};

}  // namespace

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
    spread_points_over_groups();
    return;
  }
  std::vector<Objective*> pointers;
  for (int64_t i = 0; i < blocks.local; ++i) {
    std::unique_ptr<Objective> block = std::make_unique<LocalObjective>(
        problem_.parameters(), [this, i] { return problem_.block_loss(i); });
    if (!problem_.blocks_are_thread_invariant())
      block = std::make_unique<SingleThreadedObjective>(std::move(block));
    block_objectives_.push_back(std::move(block));
    pointers.push_back(block_objectives_.back().get());
  }
  spread_blocks_over_groups(pointers, blocks.first, blocks.total);
  global_ = std::make_unique<OrderedDistributedObjective>(std::move(pointers), blocks.first,
                                                          blocks.total, layout_.data);
}

/// The ranks of the other groups with this data rank hold the same blocks: group g evaluates
/// the g-th consecutive chunk of them. Every block still has one evaluator over all ranks, so
/// the ordered sum stays the serial one, bit for bit.
void BatchObjectives::spread_blocks_over_groups(const std::vector<Objective*>& local_blocks,
                                                int64_t first, int64_t total) {
  all_ranks_global_.reset();
  const int64_t groups = layout_.groups, local = static_cast<int64_t>(local_blocks.size());
  if (groups == 1 || local < groups) return;
  const Range mine = balanced_share(local, Shard{layout_.group, layout_.groups});
  std::vector<Objective*> chunk(local_blocks.begin() + mine.begin, local_blocks.begin() + mine.end);
  all_ranks_global_ = std::make_unique<OrderedDistributedObjective>(std::move(chunk), first + mine.begin,
                                                                    total, layout_.world);
}

/// Full batch in one piece per data rank: group g evaluates part g of the shard's points.
void BatchObjectives::spread_points_over_groups() {
  all_ranks_global_.reset();
  if (layout_.groups == 1 || !problem_.splits_points()) return;
  all_ranks_local_ = std::make_unique<LocalObjective>(problem_.parameters(), [this] {
    return problem_.part_loss(layout_.group, layout_.groups);
  });
  all_ranks_global_ = std::make_unique<DistributedObjective>(*all_ranks_local_, layout_.world);
}

/// Mini-batch: world rank w evaluates the w-th consecutive slice of the batch (every rank holds
/// all samples). Not with batch norm, whose statistics are synchronized over the data group.
void BatchObjectives::spread_mini_batch_over_all_ranks(const torch::Tensor& indices) {
  all_ranks_global_.reset();
  if (layout_.groups == 1 || problem_.couples_samples()) return;
  const int64_t b = indices.numel();
  const Range mine = balanced_share(b, Shard{layout_.world->rank(), layout_.world->size()});
  all_ranks_share_ = mine.size() > 0 ? indices.narrow(0, mine.begin, mine.size()) : torch::Tensor();
  const double share = static_cast<double>(mine.size()) / static_cast<double>(b);
  all_ranks_local_ = std::make_unique<LocalObjective>(problem_.parameters(), [this, share]() {
    if (!all_ranks_share_.defined()) return torch::zeros({}, problem_.parameters().options());
    return problem_.loss(all_ranks_share_) * share;
  });
  all_ranks_global_ = std::make_unique<DistributedObjective>(*all_ranks_local_, layout_.world);
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
  spread_mini_batch_over_all_ranks(indices);
  // loss() is a mean: the micro-batches' weighted losses add up to the share above.
  context_.data_subdomains_add_up = !problem_.couples_samples();
  for (const auto& m : micro_indices_) {
    torch::Tensor idx = m.indices;
    micro_.push_back(std::make_unique<LocalObjective>(problem_.parameters(),
                                                      [this, idx] { return problem_.local_loss(idx); }));
  }
}

void BatchObjectives::fill_context() {
  context_.objective = all_ranks_global_ ? all_ranks_global_.get() : global_.get();
  context_.group_objective = all_ranks_global_ ? global_.get() : nullptr;
  context_.data_subdomains.clear();
  for (size_t k = 0; k < micro_.size(); ++k) {
    context_.data_subdomains.push_back(
        {micro_indices_[k].index, micro_[k].get(), micro_indices_[k].weight});
  }
}

}  // namespace ddtrain::driver
