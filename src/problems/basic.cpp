#include "ddtrain/problems/basic.hpp"

#include <cmath>
#include <vector>

#include "ddtrain/error.hpp"

namespace ddtrain {

std::string Basic1dOptions::validate() const {
  if (points < 1) return "points must be >= 1, got " + std::to_string(points);
  if (test_points < 2) return "test_points must be >= 2";
  if (!(boundary_weight >= 0)) return "boundary_weight must be >= 0";
  if (!std::isfinite(amplitude)) return "amplitude must be finite";
  if (!(frequency > 0) || !std::isfinite(frequency)) return "frequency must be finite and > 0";
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count) return "invalid shard";
  if (blocks < 0) return "blocks must be >= 0 (0: one piece per rank), got " + std::to_string(blocks);
  if (blocks > 0 && blocks < shard.count)
    return "blocks " + std::to_string(blocks) + " is smaller than the number of data-parallel ranks (" +
           std::to_string(shard.count) + "): every rank needs at least one block";
  const int64_t pieces = blocks > 0 ? blocks : shard.count;
  if (scaling == Scaling::kStrong && points < pieces)
    return "points " + std::to_string(points) + " is smaller than the number of " +
           (blocks > 0 ? "blocks (" : "data-parallel ranks (") + std::to_string(pieces) +
           "): every " + (blocks > 0 ? "block" : "rank") + " needs at least one point";
  return "";
}

torch::Tensor sample_interval_points(int64_t points, Scaling scaling, const Shard& shard,
                                     uint64_t seed, torch::Dtype dtype) {
  const bool weak = scaling == Scaling::kWeak;
  auto generator = at::detail::createCPUGenerator(seed * 7919 + 17 + (weak ? shard.index : 0));
  torch::Tensor all = torch::rand({points, 1}, generator, torch::TensorOptions().dtype(torch::kFloat64)) * 2 - 1;
  if (!weak) all = all.index({torch::arange(shard.index, points, shard.count)});
  return all.to(dtype);
}

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Shared machinery: a fully connected network, points of this shard, a test grid.
/// The local points come in pieces: one per data block with --blocks (block b = the points
/// shard b of B would hold), else one for the whole shard. The loss is the sum of the pieces'
/// shares; the boundary term belongs to the piece of global block / shard 0.
class Basic1dProblem : public Problem {
 public:
  explicit Basic1dProblem(const Basic1dOptions& options) : options_(options) {
    require_valid(options_.validate());
    torch::manual_seed(options_.seed);
    FullyConnectedOptions net = options_.network;
    net.inputs = 1;
    net.outputs = 1;
    model_ = FullyConnected(net);
    model_->to(options_.device, options_.dtype);
    parameters_ = std::make_unique<FlatParameters>(*model_);
    const bool weak = options_.scaling == Scaling::kWeak;
    if (options_.blocks == 0) {
      pieces_.push_back({sample(options_.shard), {}, options_.shard.index == 0});
      global_points_ = weak ? options_.points * options_.shard.count : options_.points;
    } else {
      const int64_t total = options_.blocks;
      const Range mine = balanced_share(total, options_.shard);
      blocks_ = {mine.begin, mine.size(), total};
      for (int64_t b = blocks_.first; b < blocks_.first + blocks_.local; ++b)
        pieces_.push_back({sample({static_cast<int>(b), static_cast<int>(total)}), {}, b == 0});
      global_points_ = weak ? options_.points * total : options_.points;
    }
    std::vector<torch::Tensor> all;
    for (const Piece& piece : pieces_) all.push_back(piece.x);
    points_ = torch::cat(all);
    test_x_ = torch::linspace(-1, 1, options_.test_points,
                              torch::TensorOptions().dtype(options_.dtype).device(options_.device))
                  .unsqueeze(1);
  }
  FlatParameters& parameters() override { return *parameters_; }
  torch::nn::Module& model() override { return *model_; }
  bool full_batch() const override { return true; }
  int64_t num_samples() const override { return points_.size(0); }
  int64_t global_num_samples() const override { return global_points_; }
  Blocks blocks() const override { return blocks_; }

  torch::Tensor loss(const torch::Tensor&) override {
    torch::Tensor share = piece_loss(pieces_.front());
    for (size_t i = 1; i < pieces_.size(); ++i) share = share + piece_loss(pieces_[i]);
    return share;
  }
  torch::Tensor block_loss(int64_t i) override {
    DDTRAIN_CHECK(i >= 0 && i < static_cast<int64_t>(pieces_.size()), InvalidArgument,
                  "block ", i, " is not held by this process");
    return piece_loss(pieces_[static_cast<size_t>(i)]);
  }

  Metric evaluate() override {
    torch::NoGradGuard no_grad;
    torch::Tensor exact = solution(test_x_);
    torch::Tensor error = model_->forward(test_x_) - exact;
    return {"rel_l2", (error.norm() / exact.norm()).item<double>(), false};
  }

 protected:
  struct Piece {
    torch::Tensor x;       ///< (n, 1) points
    torch::Tensor target;  ///< what the problem compares with at x (set by the problem)
    bool boundary;         ///< this piece carries the boundary term
  };
  virtual torch::Tensor solution(const torch::Tensor& x) const = 0;
  /// This piece's share of the global loss.
  virtual torch::Tensor piece_loss(const Piece& piece) = 0;
  double global_count() const { return static_cast<double>(global_points_); }

  Basic1dOptions options_;
  FullyConnected model_{nullptr};
  std::unique_ptr<FlatParameters> parameters_;
  std::vector<Piece> pieces_;
  torch::Tensor points_, test_x_;
  int64_t global_points_ = 0;
  Blocks blocks_;

 private:
  torch::Tensor sample(const Shard& shard) const {
    return sample_interval_points(options_.points, options_.scaling, shard, options_.seed,
                                  options_.dtype)
        .to(options_.device);
  }
};

class FunctionFit final : public Basic1dProblem {
 public:
  explicit FunctionFit(const Basic1dOptions& options) : Basic1dProblem(options) {
    for (Piece& piece : pieces_) piece.target = solution(piece.x);
  }
  std::string name() const override { return "function_fit"; }

 private:
  torch::Tensor piece_loss(const Piece& piece) override {
    return (model_->forward(piece.x) - piece.target).pow(2).sum() / global_count();
  }
  // K = 2 evaluates as the original sin(2 pi x) + sin(4 pi x) bit for bit: (2 * 2) * pi = 4 * pi.
  torch::Tensor solution(const torch::Tensor& x) const override {
    const double k = options_.frequency;
    return torch::sin(k * kPi * x) + torch::sin(2 * k * kPi * x);
  }
};

class Poisson1d final : public Basic1dProblem {
 public:
  explicit Poisson1d(const Basic1dOptions& options) : Basic1dProblem(options) {
    // A = 1, K = 2 evaluates as the original 4 pi^2 sin(2 pi x) bit for bit: ((1 * 2) * 2) * pi * pi.
    const double k = options_.frequency;
    const double scale = options_.amplitude * k * k * kPi * kPi;
    for (Piece& piece : pieces_) piece.target = scale * torch::sin(k * kPi * piece.x);
    boundary_ = torch::tensor({-1.0, 1.0}, points_.options()).unsqueeze(1);
  }
  std::string name() const override { return "poisson1d"; }

 private:
  torch::Tensor piece_loss(const Piece& piece) override {
    torch::Tensor x = piece.x.detach().requires_grad_(true);
    torch::Tensor u = model_->forward(x);
    torch::Tensor ux = torch::autograd::grad({u.sum()}, {x}, {}, true, true)[0];
    torch::Tensor uxx = torch::autograd::grad({ux.sum()}, {x}, {}, true, true)[0];
    torch::Tensor residual = -uxx - piece.target;
    torch::Tensor share = residual.pow(2).sum() / global_count();
    // The boundary term is owned by one piece so that shares sum to the serial loss.
    if (piece.boundary)
      share = share + options_.boundary_weight * model_->forward(boundary_).pow(2).mean();
    return share;
  }
  torch::Tensor solution(const torch::Tensor& x) const override {
    return options_.amplitude * torch::sin(options_.frequency * kPi * x);
  }
  torch::Tensor boundary_;
};

}  // namespace

ProblemPtr make_function_fit(const Basic1dOptions& options) {
  return std::make_unique<FunctionFit>(options);
}
ProblemPtr make_poisson1d(const Basic1dOptions& options) {
  return std::make_unique<Poisson1d>(options);
}

}  // namespace ddtrain
