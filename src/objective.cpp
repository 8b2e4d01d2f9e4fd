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
    // Loss only: no graph over the parameters (input derivatives of PINNs still work).
    torch::Tensor loss = closure_();
    return loss.detach().item<double>();
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
