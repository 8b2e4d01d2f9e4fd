#include "ddtrain/solvers/lbfgs_memory.hpp"

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/host_values.hpp"

namespace ddtrain {

LbfgsMemory::LbfgsMemory(int capacity, double curvature_epsilon)
    : capacity_(capacity), epsilon_(curvature_epsilon) {
  DDTRAIN_CHECK(capacity >= 1, InvalidArgument, "L-BFGS history must be >= 1, got ", capacity);
}

LbfgsMemory::Direction LbfgsMemory::descent_direction(const torch::Tensor& g) {
  Direction d{apply_inverse_hessian(g).neg_(), 0};
  d.slope = g.dot(d.direction).item<double>();
  if (!(d.slope < 0)) {
    reset();
    d.direction = g.neg();
    d.slope = -g.dot(g).item<double>();
  }
  return d;
}

void LbfgsMemory::reset() {
  count_ = 0;
  head_ = 0;
  gamma_ = 1.0;
}

bool LbfgsMemory::push(const torch::Tensor& s, const torch::Tensor& y) {
  const auto [ys, yy] = host_values(y.dot(s), y.dot(y));
  if (!(ys > epsilon_ * yy) || !std::isfinite(ys) || !(yy > 0)) {
    ++skipped_;
    return false;
  }
  if (!s_.defined() || s_.size(1) != s.numel() || s_.dtype() != s.dtype() ||
      s_.device() != s.device()) {
    s_ = torch::empty({capacity_, s.numel()}, s.options());
    y_ = torch::empty({capacity_, s.numel()}, s.options());
    rho_ = torch::empty({capacity_}, s.options());
    count_ = 0;
    head_ = 0;
  }
  s_[head_].copy_(s);
  y_[head_].copy_(y);
  rho_[head_].fill_(1.0 / ys);
  head_ = (head_ + 1) % capacity_;
  count_ = std::min(count_ + 1, capacity_);
  gamma_ = ys / yy;
  return true;
}

torch::Tensor LbfgsMemory::apply_inverse_hessian(const torch::Tensor& g) const {
  torch::Tensor q = g.clone();
  if (count_ == 0) return q;
  // Newest first. Scalars stay tensors: no device synchronisation inside the loops.
  std::vector<torch::Tensor> alpha(count_);
  for (int k = 0; k < count_; ++k) {
    const int i = (head_ - 1 - k + capacity_) % capacity_;
    alpha[k] = rho_[i] * s_[i].dot(q);
    q.sub_(y_[i] * alpha[k]);
  }
  q.mul_(gamma_);
  for (int k = count_ - 1; k >= 0; --k) {
    const int i = (head_ - 1 - k + capacity_) % capacity_;
    torch::Tensor beta = rho_[i] * y_[i].dot(q);
    q.add_(s_[i] * (alpha[k] - beta));
  }
  return q;
}

void LbfgsMemory::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "meta", torch::tensor({static_cast<double>(count_),
                                                static_cast<double>(head_),
                                                static_cast<double>(skipped_), gamma_},
                                               torch::kFloat64));
  if (s_.defined()) {
    archive.write(prefix + "s", s_);
    archive.write(prefix + "y", y_);
    archive.write(prefix + "rho", rho_);
  }
}

void LbfgsMemory::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  torch::Tensor meta;
  archive.read(prefix + "meta", meta);
  auto m = meta.accessor<double, 1>();
  count_ = static_cast<int>(m[0]);
  head_ = static_cast<int>(m[1]);
  skipped_ = static_cast<int64_t>(m[2]);
  gamma_ = m[3];
  if (count_ > 0) {
    archive.read(prefix + "s", s_);
    archive.read(prefix + "y", y_);
    archive.read(prefix + "rho", rho_);
    DDTRAIN_CHECK(s_.size(0) == capacity_, InvalidArgument, "checkpoint L-BFGS history ",
                  s_.size(0), " differs from --history ", capacity_);
  }
}

}  // namespace ddtrain
