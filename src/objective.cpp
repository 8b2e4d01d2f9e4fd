#include "ddtrain/objective.hpp"

#include "ddtrain/error.hpp"

namespace ddtrain {

// ---- LocalObjective -------------------------------------------------------------------------

LocalObjective::LocalObjective(FlatParameters& parameters, LossClosure closure)
    : parameters_(parameters), closure_(std::move(closure)) {}

void LocalObjective::set_active(const std::vector<Range>& active) {
  parameters_.set_trainable(active);
}

void LocalObjective::commit(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  if (x.data_ptr() != parameters_.values().data_ptr()) parameters_.values().copy_(x);
}

double LocalObjective::evaluate(const torch::Tensor& x, torch::Tensor* gradient) {
  count(gradient != nullptr);
  commit(x);
  // Solvers run their vector algebra under NoGradGuard; the closure needs autograd (PINN
  // residuals differentiate with respect to the inputs even for a loss-only evaluation).
  torch::AutoGradMode grad_mode(true);
  if (gradient == nullptr) {
    // Loss only: no graph over the parameters (input derivatives of PINNs still work), so the
    // closure records nothing for them and the fused Allen–Cahn loss skips its backward.
    const std::vector<bool> trainable = parameters_.trainable_flags();
    struct Restore {
      FlatParameters& parameters;
      const std::vector<bool>& flags;
      ~Restore() { parameters.set_trainable_flags(flags); }
    } restore{parameters_, trainable};
    parameters_.set_trainable_flags(std::vector<bool>(trainable.size(), false));
    return closure_().detach().item<double>();
  }
  parameters_.zero_gradients();
  torch::Tensor loss = closure_();
  DDTRAIN_CHECK(loss.numel() == 1, InvalidArgument, "the loss closure must return a scalar");
  if (loss.requires_grad()) {
    loss.backward();
    parameters_.ensure_gradient_views();
  }
  torch::Tensor& flat = parameters_.gradients();
  if (gradient->data_ptr() != flat.data_ptr()) gradient->copy_(flat);
  return loss.detach().item<double>();
}

// ---- DistributedObjective -------------------------------------------------------------------

DistributedObjective::DistributedObjective(Objective& local, CommunicatorPtr comm,
                                           std::optional<double> local_count)
    : local_(local), comm_(std::move(comm)), local_count_(local_count) {
  DDTRAIN_CHECK(comm_ != nullptr, InvalidArgument, "DistributedObjective needs a communicator");
}

double DistributedObjective::evaluate(const torch::Tensor& x, torch::Tensor* gradient) {
  count(gradient != nullptr);
  const bool weighted = local_count_.has_value();
  const double weight = weighted ? *local_count_ : 1.0;
  if (gradient == nullptr) {
    const double loss = local_.evaluate(x, nullptr);
    if (comm_->size() == 1) return loss;
    torch::Tensor pair = torch::tensor({loss * weight, weight}, torch::kFloat64);
    comm_->allreduce_sum(pair);
    auto values = pair.accessor<double, 1>();
    return weighted ? values[0] / values[1] : values[0];
  }
  const int64_t d = local_.dimension();
  if (!buffer_.defined() || buffer_.numel() != d + 2 || buffer_.options().dtype() != x.dtype() ||
      buffer_.device() != x.device()) {
    buffer_ = torch::empty({d + 2}, x.options());
  }
  torch::Tensor g = buffer_.narrow(0, 0, d);
  const double loss = local_.evaluate(x, &g);
  if (comm_->size() == 1) {
    if (gradient->data_ptr() != g.data_ptr()) gradient->copy_(g);
    return loss;
  }
  // One fused allreduce of [loss*w, grad*w, w].
  if (weighted) g.mul_(weight);
  buffer_.narrow(0, d, 2).copy_(torch::tensor({loss * weight, weight}, torch::kFloat64));
  comm_->allreduce_sum(buffer_);
  torch::Tensor tail = buffer_.narrow(0, d, 2).to(torch::kCPU, torch::kFloat64);
  const double total_weight = weighted ? tail[1].item<double>() : 1.0;
  if (weighted) g.div_(total_weight);
  gradient->copy_(g);
  return tail[0].item<double>() / total_weight;
}

// ---- OrderedDistributedObjective ------------------------------------------------------------

OrderedDistributedObjective::OrderedDistributedObjective(std::vector<Objective*> blocks,
                                                         int64_t first_block, int64_t total_blocks,
                                                         CommunicatorPtr comm)
    : blocks_(std::move(blocks)), first_block_(first_block), total_blocks_(total_blocks),
      comm_(std::move(comm)) {
  DDTRAIN_CHECK(comm_ != nullptr, InvalidArgument, "OrderedDistributedObjective needs a communicator");
  DDTRAIN_CHECK(!blocks_.empty(), InvalidArgument,
                "every rank needs at least one data block (more ranks than blocks?)");
  DDTRAIN_CHECK(first_block_ >= 0 && first_block_ + static_cast<int64_t>(blocks_.size()) <= total_blocks_,
                InvalidArgument, "blocks [", first_block_, ", ", first_block_ + blocks_.size(),
                ") outside [0, ", total_blocks_, ")");
}

void OrderedDistributedObjective::set_active(const std::vector<Range>& active) {
  for (Objective* block : blocks_) block->set_active(active);
}

double OrderedDistributedObjective::evaluate(const torch::Tensor& x, torch::Tensor* gradient) {
  count(gradient != nullptr);
  const int64_t d = dimension();
  const int64_t width = gradient != nullptr ? d + 1 : 1;
  if (!rows_.defined() || rows_.size(1) != width || rows_.options().dtype() != x.dtype() ||
      rows_.device() != x.device()) {
    rows_ = torch::empty({total_blocks_, width}, x.options());
  }
  rows_.zero_();
  for (size_t i = 0; i < blocks_.size(); ++i) {
    torch::Tensor row = rows_.select(0, first_block_ + static_cast<int64_t>(i));
    torch::Tensor g = row.narrow(0, 0, width - 1);
    const double loss = blocks_[i]->evaluate(x, gradient != nullptr ? &g : nullptr);
    row.narrow(0, width - 1, 1).fill_(loss);
  }
  if (comm_->size() > 1) comm_->allreduce_sum(rows_);
  // Block order, on every rank alike.
  torch::Tensor losses = rows_.select(1, width - 1).to(torch::kCPU, torch::kFloat64);
  auto loss_of = losses.accessor<double, 1>();
  double loss = 0;
  for (int64_t b = 0; b < total_blocks_; ++b) loss += loss_of[b];
  if (gradient != nullptr) {
    torch::Tensor sum = gradient->narrow(0, 0, d);
    sum.copy_(rows_.select(0, 0).narrow(0, 0, d));
    for (int64_t b = 1; b < total_blocks_; ++b) sum.add_(rows_.select(0, b).narrow(0, 0, d));
  }
  return loss;
}

// ---- SubdomainObjective ---------------------------------------------------------------------

SubdomainObjective::SubdomainObjective(Objective& full, std::vector<Range> ranges,
                                       torch::Tensor base)
    : full_(full), ranges_(std::move(ranges)), base_(std::move(base)) {
  DDTRAIN_CHECK(!ranges_.empty(), InvalidArgument, "a subdomain needs at least one range");
  for (const Range& r : ranges_) {
    DDTRAIN_CHECK(r.begin >= 0 && r.end <= full_.dimension() && r.begin < r.end, InvalidArgument,
                  "subdomain range [", r.begin, ", ", r.end, ") outside [0, ", full_.dimension(), ")");
    dimension_ += r.size();
  }
}

torch::Tensor SubdomainObjective::restrict_vector(const torch::Tensor& full) const {
  if (ranges_.size() == 1) return full.narrow(0, ranges_[0].begin, ranges_[0].size()).clone();
  std::vector<torch::Tensor> parts;
  for (const Range& r : ranges_) parts.push_back(full.narrow(0, r.begin, r.size()));
  return torch::cat(parts);
}

void SubdomainObjective::scatter_into(torch::Tensor& full, const torch::Tensor& part) const {
  int64_t offset = 0;
  for (const Range& r : ranges_) {
    full.narrow(0, r.begin, r.size()).copy_(part.narrow(0, offset, r.size()));
    offset += r.size();
  }
}

double SubdomainObjective::evaluate(const torch::Tensor& x, torch::Tensor* gradient) {
  count(gradient != nullptr);
  if (!point_.defined() || point_.numel() != base_.numel()) point_ = base_.clone();
  point_.copy_(base_);
  scatter_into(point_, x);
  if (gradient == nullptr) return full_.evaluate(point_, nullptr);
  if (!full_gradient_.defined() || full_gradient_.numel() != base_.numel())
    full_gradient_ = torch::empty_like(base_);
  full_.set_active(ranges_);
  double loss;
  try {
    loss = full_.evaluate(point_, &full_gradient_);
  } catch (...) {
    full_.set_active({});
    throw;
  }
  full_.set_active({});
  int64_t offset = 0;
  for (const Range& r : ranges_) {
    gradient->narrow(0, offset, r.size()).copy_(full_gradient_.narrow(0, r.begin, r.size()));
    offset += r.size();
  }
  return loss;
}

}  // namespace ddtrain
