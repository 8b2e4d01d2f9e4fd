#include "ddtrain/models/classifiers.hpp"

#include "ddtrain/error.hpp"

namespace ddtrain {

torch::Tensor differentiable_allreduce_sum(const torch::Tensor& local, const CommunicatorPtr& comm) {
  if (!comm || comm->size() == 1) return local;
  torch::Tensor total = local.detach().clone().contiguous();
  comm->allreduce_sum(total);
  if (!local.requires_grad()) return total;
  // Value: exactly `total` (local - local.detach() is exactly 0), so every rank holds the same
  // bits. Gradient: identity to `local`, replaced by the hook with the sum over the ranks.
  torch::Tensor out = total + (local - local.detach());
  out.register_hook([comm](torch::Tensor grad) {
    torch::Tensor sum = grad.contiguous().clone();
    comm->allreduce_sum(sum);
    return sum;
  });
  return out;
}

// ---- SyncBatchNorm ----------------------------------------------------------------------------

SyncBatchNormImpl::SyncBatchNormImpl(SyncBatchNormOptions options, CommunicatorPtr comm)
    : options_(options), comm_(std::move(comm)) {
  DDTRAIN_CHECK(options_.features >= 1, InvalidArgument, "batch norm needs >= 1 feature");
  DDTRAIN_CHECK(options_.eps > 0 && options_.momentum >= 0 && options_.momentum <= 1,
                InvalidArgument, "batch norm needs eps > 0 and momentum in [0, 1]");
  weight = register_parameter("weight", torch::ones({options_.features}));
  bias = register_parameter("bias", torch::zeros({options_.features}));
  running_mean = register_buffer("running_mean", torch::zeros({options_.features}));
  running_var = register_buffer("running_var", torch::ones({options_.features}));
}

torch::Tensor SyncBatchNormImpl::forward(const torch::Tensor& x) {
  DDTRAIN_CHECK(x.dim() >= 2 && x.size(1) == options_.features, InvalidArgument,
                "batch norm over ", options_.features, " channels got an input of shape ",
                x.sizes());
  if (is_training() && comm_ && comm_->size() > 1) return synchronized_forward(x);
  if (is_training()) {
    DDTRAIN_CHECK(x.numel() / options_.features > 1, InvalidArgument,
                  "batch norm in training needs more than one value per channel; the batch has ",
                  x.size(0), " sample(s)");
  }
  const bool frozen = is_training() && !update_running_stats_;
  return torch::batch_norm(x, weight, bias, frozen ? torch::Tensor() : running_mean,
                           frozen ? torch::Tensor() : running_var, is_training(), options_.momentum,
                           options_.eps, /*cudnn_enabled=*/true);
}

torch::Tensor SyncBatchNormImpl::synchronized_forward(const torch::Tensor& x) {
  const int64_t c = options_.features;
  std::vector<int64_t> reduce_dims = {0};
  for (int64_t d = 2; d < x.dim(); ++d) reduce_dims.push_back(d);
  std::vector<int64_t> channel_shape(static_cast<size_t>(x.dim()), 1);
  channel_shape[1] = c;

  // One allreduce of [sum, sum of squares, count]; the count rides along as a constant.
  const double local_count = static_cast<double>(x.numel() / c);
  torch::Tensor stats = torch::cat({x.sum(reduce_dims), (x * x).sum(reduce_dims),
                                    torch::full({1}, local_count, x.options())});
  stats = differentiable_allreduce_sum(stats, comm_);
  const double count = stats[2 * c].item<double>();
  DDTRAIN_CHECK(count > 1, InvalidArgument,
                "batch norm in training needs more than one value per channel over all ranks");
  torch::Tensor mean = stats.narrow(0, 0, c) / count;
  // E[x^2] - mean^2 can round below zero when the variance is tiny against the mean.
  torch::Tensor var = (stats.narrow(0, c, c) / count - mean * mean).clamp_min(0);
  {
    torch::NoGradGuard no_grad;
    const double m = options_.momentum;
    running_mean.mul_(1 - m).add_(mean.detach().to(running_mean.dtype()), m);
    running_var.mul_(1 - m).add_(var.detach().to(running_var.dtype()), m * count / (count - 1));
  }
  torch::Tensor scale = torch::rsqrt(var + options_.eps) * weight;
  return (x - mean.view(channel_shape)) * scale.view(channel_shape) + bias.view(channel_shape);
}

// ---- LayerBlock ----------------------------------------------------------------------------

LayerBlockImpl::LayerBlockImpl(int64_t in, int64_t out, bool batch_norm, CommunicatorPtr comm) {
  linear_ = register_module("linear",
                            torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(!batch_norm)));
  if (batch_norm) norm_ = register_module("norm", SyncBatchNorm(SyncBatchNormOptions{out}, comm));
}

LayerBlockImpl::LayerBlockImpl(int64_t in, int64_t out, int64_t kernel, bool batch_norm,
                               CommunicatorPtr comm) {
  conv_ = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).bias(!batch_norm)));
  if (batch_norm) norm_ = register_module("norm", SyncBatchNorm(SyncBatchNormOptions{out}, comm));
}

torch::Tensor LayerBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = linear_ ? linear_->forward(x) : conv_->forward(x);
  return norm_ ? norm_->forward(y) : y;
}

// ---- Classifier ------------------------------------------------------------------------------

const char* classifier_models() { return "ffnn, cnn"; }

namespace {
/// Side length after the CNN's conv, 2x2 max-pool, conv (stride 1, no padding).
int64_t cnn_feature_side(int64_t side, int64_t kernel) { return (side - kernel + 1) / 2 - kernel + 1; }
}  // namespace

std::string ClassifierOptions::validate() const {
  if (model != "ffnn" && model != "cnn")
    return "model '" + model + "' is not a classifier (accepted: " + classifier_models() + ")";
  if (hidden < 1) return "hidden must be >= 1, got " + std::to_string(hidden);
  if (channels < 1 || height < 1 || width < 1 || classes < 2)
    return "classifier input must be C x H x W >= 1 with >= 2 classes";
  if (model == "cnn") {
    if (conv_channels0 < 1 || conv_channels1 < 1 || kernel < 1)
      return "CNN channels and kernel must be >= 1";
    if (cnn_feature_side(height, kernel) < 1 || cnn_feature_side(width, kernel) < 1)
      return "model cnn needs images of at least " + std::to_string(3 * kernel - 1) + "x" +
             std::to_string(3 * kernel - 1) + " pixels, got " + std::to_string(height) + "x" +
             std::to_string(width);
  }
  return "";
}

Classifier::Classifier(ClassifierOptions options) : options_(std::move(options)) {
  require_valid(options_.validate());
  const bool bn = options_.batch_norm;
  const CommunicatorPtr& comm = options_.comm;
  const int64_t h = options_.hidden, classes = options_.classes;
  if (options_.model == "ffnn") {
    const int64_t inputs = options_.channels * options_.height * options_.width;
    add_block("fc0", LayerBlock(inputs, h, bn, comm));
    add_block("fc1", LayerBlock(h, classes, false, comm));
    return;
  }
  const int64_t k = options_.kernel, c0 = options_.conv_channels0, c1 = options_.conv_channels1;
  const int64_t features =
      c1 * cnn_feature_side(options_.height, k) * cnn_feature_side(options_.width, k);
  add_block("conv0", LayerBlock(options_.channels, c0, k, bn, comm));
  add_block("conv1", LayerBlock(c0, c1, k, bn, comm));
  add_block("fc0", LayerBlock(features, h, bn, comm));
  add_block("fc1", LayerBlock(h, h, bn, comm));
  add_block("fc2", LayerBlock(h, classes, false, comm));
}

void Classifier::add_block(const std::string& name, LayerBlock block) {
  blocks_.push_back(register_module(name, std::move(block)));
}

torch::Tensor Classifier::forward(torch::Tensor x) {
  DDTRAIN_CHECK(x.dim() == 4 && x.size(1) == options_.channels && x.size(2) == options_.height &&
                    x.size(3) == options_.width,
                InvalidArgument, "classifier expects images (N, ", options_.channels, ", ",
                options_.height, ", ", options_.width, "), got ", x.sizes());
  const size_t last = blocks_.size() - 1;
  if (options_.model == "ffnn") {
    x = x.flatten(1);
  } else {
    x = torch::relu(blocks_[0]->forward(x));
    x = torch::max_pool2d(x, 2);
    x = torch::relu(blocks_[1]->forward(x)).flatten(1);
  }
  for (size_t b = options_.model == "ffnn" ? 0 : 2; b < last; ++b)
    x = torch::relu(blocks_[b]->forward(x));
  return blocks_[last]->forward(x);
}

void Classifier::set_communicator(CommunicatorPtr comm) {
  options_.comm = comm;
  for (auto& block : blocks_)
    if (block->norm()) block->norm()->set_communicator(comm);
}

void Classifier::set_update_running_stats(bool on) {
  for (auto& block : blocks_)
    if (block->norm()) block->norm()->set_update_running_stats(on);
}

}  // namespace ddtrain
