#include "ddtrain/problems/classification.hpp"

#include <array>
#include <cmath>
#include <filesystem>
#include <tuple>

#include "ddtrain/data/cifar_reader.hpp"
#include "ddtrain/data/idx_reader.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain {

const char* classification_datasets() { return "mnist, fashion_mnist, cifar10"; }

std::string ClassificationOptions::validate() const {
  if (dataset != "mnist" && dataset != "fashion_mnist" && dataset != "cifar10")
    return "unknown classification dataset '" + dataset + "' (accepted: " +
           classification_datasets() + ")";
  if (model != "ffnn" && model != "cnn")
    return "model '" + model + "' is not a classification network (accepted: " + classifier_models() + ")";
  if (hidden < 1) return "hidden must be >= 1, got " + std::to_string(hidden);
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64)
    return "dtype must be float32 or float64 for classification";
  if (train_subset < 0) return "train_subset must be >= 0 (0 = all), got " + std::to_string(train_subset);
  if (test_subset < 0) return "test_subset must be >= 0 (0 = all), got " + std::to_string(test_subset);
  if (eval_chunk < 1) return "eval_chunk must be >= 1";
  return "";
}

namespace {

std::string checked_data_dir(const ClassificationOptions& options) {
  require_valid(options.validate());
  DDTRAIN_CHECK(!options.data_dir.empty() || options.dataset == "fashion_mnist", InvalidArgument,
                "--data DIR is required for problem '", options.dataset,
                "' (the directory with its ",
                options.dataset == "cifar10" ? "binary batch files" : "IDX files", ")");
  const std::string dir = options.data_dir.empty() ? kFashionMnistDefaultDir : options.data_dir;
  DDTRAIN_CHECK(std::filesystem::is_directory(dir), IoError, "--data: directory '", dir,
                "' for problem '", options.dataset, "' does not exist",
                options.dataset == "fashion_mnist" && options.data_dir.empty()
                    ? " (install the Debian package dataset-fashion-mnist or pass --data DIR)"
                    : "");
  return dir;
}

data::ImageDataset load_split(const ClassificationOptions& options, const std::string& dir,
                              bool train) {
  return options.dataset == "cifar10" ? data::load_cifar10_split(dir, train)
                                      : data::load_mnist_split(dir, train);
}

/// Per-channel mean and (population) standard deviation of the first `count` images, pixels
/// scaled to [0, 1]: exact, from a 256-bin histogram per channel.
std::pair<torch::Tensor, torch::Tensor> channel_moments(const data::ImageDataset& data,
                                                        int64_t count) {
  const int64_t c = data.channels, plane = data.height * data.width;
  std::vector<std::array<int64_t, 256>> histogram(static_cast<size_t>(c));
  for (auto& h : histogram) h.fill(0);
  const uint8_t* pixel = data.pixels.data();
  for (int64_t i = 0; i < count; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < plane; ++k) ++histogram[static_cast<size_t>(ch)][*pixel++];
  std::vector<double> mean(static_cast<size_t>(c)), std(static_cast<size_t>(c));
  const double n = static_cast<double>(count * plane);
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sum_sq = 0;
    for (int v = 0; v < 256; ++v) {
      const double x = v / 255.0, w = static_cast<double>(histogram[static_cast<size_t>(ch)][v]);
      sum += w * x;
      sum_sq += w * x * x;
    }
    const double m = sum / n, var = std::max(sum_sq / n - m * m, 0.0);
    mean[static_cast<size_t>(ch)] = m;
    std[static_cast<size_t>(ch)] = var > 0 ? std::sqrt(var) : 1.0;  // a constant channel is only shifted
  }
  return {torch::tensor(mean, torch::kFloat64), torch::tensor(std, torch::kFloat64)};
}

}  // namespace

ClassificationProblem::ClassificationProblem(ClassificationOptions options)
    : options_(std::move(options)) {
  const std::string dir = checked_data_dir(options_);
  const data::ImageDataset train = load_split(options_, dir, true);  // train first: its errors first
  build(train, load_split(options_, dir, false));
}

ClassificationProblem::ClassificationProblem(ClassificationOptions options,
                                             const data::ImageDataset& train,
                                             const data::ImageDataset& test)
    : options_(std::move(options)) {
  require_valid(options_.validate());
  build(train, test);
}

void ClassificationProblem::build(const data::ImageDataset& train, const data::ImageDataset& test) {
  DDTRAIN_CHECK(train.count > 0 && test.count > 0, InvalidArgument, "problem '", options_.dataset,
                "' needs non-empty train and test sets");
  DDTRAIN_CHECK(train.channels == test.channels && train.height == test.height &&
                    train.width == test.width && train.num_classes == test.num_classes,
                InvalidArgument, "train and test images of problem '", options_.dataset,
                "' differ in shape or number of classes");
  const auto used = [](int64_t subset, int64_t count) { return subset > 0 ? std::min(subset, count) : count; };
  const int64_t n_train = used(options_.train_subset, train.count);
  const int64_t n_test = used(options_.test_subset, test.count);
  const int64_t c = train.channels;
  if (options_.normalize) {
    std::tie(mean_, std_) = channel_moments(train, n_train);
  } else {
    mean_ = torch::zeros({c}, torch::kFloat64);
    std_ = torch::ones({c}, torch::kFloat64);
  }
  train_images_ = to_images(train, n_train);
  test_images_ = to_images(test, n_test);
  const auto labels = [&](const data::ImageDataset& d, int64_t n) {
    return torch::tensor(std::vector<int64_t>(d.labels.begin(), d.labels.begin() + n), torch::kLong)
        .to(options_.device);
  };
  train_labels_ = labels(train, n_train);
  test_labels_ = labels(test, n_test);
  for (const torch::Tensor* y : {&train_labels_, &test_labels_}) {
    DDTRAIN_CHECK(y->min().item<int64_t>() >= 0 && y->max().item<int64_t>() < train.num_classes,
                  InvalidArgument, "problem '", options_.dataset, "': a label is outside [0, ",
                  train.num_classes, ")");
  }

  ClassifierOptions net;
  net.model = options_.model;
  net.channels = c;
  net.height = train.height;
  net.width = train.width;
  net.classes = train.num_classes;
  net.hidden = options_.hidden;
  net.batch_norm = options_.batch_norm;
  net.comm = options_.comm;
  torch::manual_seed(options_.seed);  // the initial weights
  classifier_ = std::make_shared<Classifier>(net);
  classifier_->to(options_.device, options_.dtype);
  parameters_ = std::make_unique<FlatParameters>(*classifier_);
}

torch::Tensor ClassificationProblem::to_images(const data::ImageDataset& data, int64_t count) const {
  // from_blob only reads: the bytes are converted into a new tensor right away.
  auto* bytes = const_cast<uint8_t*>(data.pixels.data());
  const std::vector<int64_t> channel_shape = {1, data.channels, 1, 1};
  torch::Tensor images =
      torch::from_blob(bytes, {count, data.channels, data.height, data.width}, torch::kUInt8)
          .to(options_.device, options_.dtype);
  images.div_(255.0)
      .sub_(mean_.to(images.options()).view(channel_shape))
      .div_(std_.to(images.options()).view(channel_shape));
  return images;
}

void ClassificationProblem::set_batch_norm_synchronized(bool on) {
  classifier_->set_communicator(on ? options_.comm : nullptr);
}

torch::Tensor ClassificationProblem::loss(const torch::Tensor& indices) {
  DDTRAIN_CHECK(indices.defined() && indices.dim() == 1 && indices.numel() > 0, InvalidArgument,
                "problem '", options_.dataset, "' needs a non-empty 1-D tensor of sample indices");
  const torch::Tensor idx = indices.to(train_images_.device(), torch::kLong);
  classifier_->train();
  torch::Tensor logits = classifier_->forward(train_images_.index_select(0, idx));
  return torch::nn::functional::cross_entropy(logits, train_labels_.index_select(0, idx));
}

torch::Tensor ClassificationProblem::local_loss(const torch::Tensor& indices) {
  if (!options_.batch_norm) return loss(indices);
  auto set_local = [&](bool local) {
    set_batch_norm_synchronized(!local);
    classifier_->set_update_running_stats(!local);
  };
  set_local(true);
  torch::Tensor result;
  try {
    result = loss(indices);
  } catch (...) {
    set_local(false);
    throw;
  }
  set_local(false);
  return result;
}

template <typename PerChunk>
void ClassificationProblem::for_each_chunk(const torch::Tensor& images, const torch::Tensor& labels,
                                           PerChunk per_chunk) {
  torch::NoGradGuard no_grad;
  const bool was_training = classifier_->is_training();
  classifier_->eval();
  const int64_t n = images.size(0);
  for (int64_t begin = 0; begin < n; begin += options_.eval_chunk) {
    const int64_t size = std::min(options_.eval_chunk, n - begin);
    per_chunk(classifier_->forward(images.narrow(0, begin, size)), labels.narrow(0, begin, size));
  }
  classifier_->train(was_training);
}

Metric ClassificationProblem::evaluate() {
  int64_t correct = 0;
  for_each_chunk(test_images_, test_labels_, [&](const torch::Tensor& logits, const torch::Tensor& y) {
    correct += logits.argmax(1).eq(y).sum().item<int64_t>();
  });
  return {"accuracy", static_cast<double>(correct) / static_cast<double>(test_labels_.size(0)), true};
}

double ClassificationProblem::train_loss() {
  double sum = 0;
  for_each_chunk(train_images_, train_labels_, [&](const torch::Tensor& logits, const torch::Tensor& y) {
    sum += torch::nn::functional::cross_entropy(
               logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
               .item<double>();
  });
  return sum / static_cast<double>(train_labels_.size(0));
}

}  // namespace ddtrain
