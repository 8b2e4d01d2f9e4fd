#pragma once
// Image classification problems: MNIST, Fashion-MNIST and CIFAR-10 with the FFNN or the CNN of
// models/classifiers.hpp, mean cross-entropy loss, test accuracy as the metric.
//
// Every process holds the whole training set (a normalized float tensor on the device); the
// driver draws mini-batches of indices and splits them into micro-batches. With batch norm on,
// the normalization statistics of a training forward are SYNCHRONIZED over `comm` (the
// data-parallel communicator): when the ranks of `comm` evaluate loss() on their parts of one
// mini-batch together (the driver's global objective), every rank normalizes with the mean and
// variance of the whole mini-batch, exactly as one process evaluating the whole mini-batch
// would. loss() is then a collective over `comm`: every rank of it must call loss() (and
// backward) in lockstep. set_batch_norm_synchronized(false) makes loss() use only the
// statistics of the given indices and no communication (e.g. for per-micro-batch objectives
// that the ranks evaluate independently).
#include <torch/torch.h>

#include <memory>
#include <string>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/data/dataset.hpp"
#include "ddtrain/models/classifiers.hpp"
#include "ddtrain/problem.hpp"

namespace ddtrain {

/// Where the Debian package dataset-fashion-mnist installs Fashion-MNIST.
inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

struct ClassificationOptions {
  std::string dataset = "fashion_mnist";  ///< "mnist", "fashion_mnist" or "cifar10"
  /// --data: the directory with the data set's files ("" = kFashionMnistDefaultDir for
  /// fashion_mnist; required for mnist and cifar10, checked when loading). IDX files (plain or .gz, also in DIR/raw)
  /// for (Fashion-)MNIST; data_batch_1..5.bin and test_batch.bin (also in
  /// DIR/cifar-10-batches-bin) for CIFAR-10.
  std::string data_dir;
  std::string model = "ffnn";  ///< --model: "ffnn" or "cnn" (see Classifier)
  int64_t hidden = 128;        ///< --hidden: FFNN hidden width / CNN fully connected widths
  bool batch_norm = false;     ///< --batch-norm: synchronized batch norm in every hidden layer
  /// Standardize every channel with the mean and standard deviation of the training samples in
  /// use (computed at load time; pixels are first scaled to [0, 1]). Off: pixels in [0, 1].
  bool normalize = true;
  torch::Dtype dtype = torch::kFloat32;  ///< --dtype: parameters and data
  torch::Device device = torch::kCPU;    ///< --device
  uint64_t seed = 0;                     ///< --seed: initial weights
  int64_t train_subset = 0;  ///< --train-subset: use at most the first K training samples; 0 = all
  int64_t test_subset = 0;   ///< --test-subset: use at most the first K test samples; 0 = all
  int64_t eval_chunk = 500;  ///< samples per forward in evaluate() and train_loss() (CPU: 250-500 fastest)
  /// Communicator over which batch-norm statistics are synchronized (the data-parallel group of
  /// the driver's Layout). Null = none (serial). Ignored without batch_norm.
  CommunicatorPtr comm;
  std::string validate() const;  ///< "" or a one-line message naming the field
};

/// Accepted values of ClassificationOptions::dataset, for messages: "mnist, fashion_mnist, cifar10".
const char* classification_datasets();

class ClassificationProblem final : public Problem {
 public:
  /// Loads the train and test splits of options.dataset from options.data_dir.
  /// Throws InvalidArgument (invalid options, no data_dir for mnist / cifar10) or IoError
  /// (missing directory, missing or malformed files).
  explicit ClassificationProblem(ClassificationOptions options);
  /// Uses already loaded data sets (tests, users with their own readers); data_dir is unused.
  ClassificationProblem(ClassificationOptions options, const data::ImageDataset& train,
                        const data::ImageDataset& test);

  std::string name() const override { return options_.dataset; }
  FlatParameters& parameters() override { return *parameters_; }
  torch::nn::Module& model() override { return *classifier_; }
  Classifier& classifier() { return *classifier_; }
  bool full_batch() const override { return false; }
  int64_t num_samples() const override { return train_labels_.size(0); }

  /// Mean cross-entropy over the given training indices (int64, any device), in training mode.
  torch::Tensor loss(const torch::Tensor& indices) override;
  /// loss() with batch-norm statistics of these indices only (no communication), leaving the
  /// running statistics untouched, so local solves on any rank count give the same result.
  torch::Tensor local_loss(const torch::Tensor& indices) override;
  /// Batch norm couples the samples of a batch through its statistics.
  bool couples_samples() const override { return options_.batch_norm; }
  /// Test accuracy in [0, 1] (evaluation mode, no gradients, chunks of eval_chunk).
  Metric evaluate() override;
  /// Mean cross-entropy over the whole training set in use, in evaluation mode (batch norm
  /// with its running statistics), without gradients.
  double train_loss();

  /// Synchronize batch-norm statistics over options.comm in loss() (default true).
  void set_batch_norm_synchronized(bool on);

  /// The normalized images (N, C, H, W) and labels (N) on the device.
  const torch::Tensor& train_images() const { return train_images_; }
  const torch::Tensor& train_labels() const { return train_labels_; }
  const torch::Tensor& test_images() const { return test_images_; }
  const torch::Tensor& test_labels() const { return test_labels_; }
  /// Per-channel mean and standard deviation (float64, of pixels scaled to [0, 1]) used for
  /// normalization (0 and 1 when normalize is off).
  const torch::Tensor& channel_mean() const { return mean_; }
  const torch::Tensor& channel_std() const { return std_; }
  const ClassificationOptions& options() const { return options_; }

 private:
  void build(const data::ImageDataset& train, const data::ImageDataset& test);
  torch::Tensor to_images(const data::ImageDataset& data, int64_t count) const;
  /// Runs `per_chunk(images, labels)` over a split in evaluation mode without gradients.
  template <typename PerChunk>
  void for_each_chunk(const torch::Tensor& images, const torch::Tensor& labels, PerChunk per_chunk);

  ClassificationOptions options_;
  std::shared_ptr<Classifier> classifier_;
  std::unique_ptr<FlatParameters> parameters_;
  torch::Tensor train_images_, train_labels_, test_images_, test_labels_;
  torch::Tensor mean_, std_;
};

}  // namespace ddtrain
