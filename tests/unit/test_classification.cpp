// Classification problems (MNIST / Fashion-MNIST / CIFAR-10 on tiny files in the real formats,
// written here), the FFNN and CNN classifiers, and SyncBatchNorm without MPI.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ddtrain/error.hpp"
#include "ddtrain/flat_parameters.hpp"
#include "ddtrain/models/classifiers.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/problems/classification.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "remove_tree.hpp"
#include "test_files.hpp"

namespace {

using ddtrain::ClassificationOptions;
using ddtrain::ClassificationProblem;
using ddtrain::Classifier;
using ddtrain::ClassifierOptions;

/// A learnable tiny image set: class k (of 4) lights up horizontal band k, plus noise.
struct TinyImages {
  uint32_t count = 0, rows = 14, cols = 14;
  Bytes pixels, labels;
};

TinyImages tiny_images(uint32_t count, unsigned seed, uint32_t rows = 14, uint32_t cols = 14) {
  TinyImages t{count, rows, cols, {}, {}};
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t label = static_cast<uint8_t>(random() % 4);
    t.labels.push_back(label);
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c)
        t.pixels.push_back(static_cast<uint8_t>(noise(random) + (r * 4 / rows == label ? 180 : 0)));
  }
  return t;
}

class Classification : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("ddtrain_classification_" + std::string(info->name()) + "_" +
            std::to_string(std::random_device()()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    remove_tree(dir_);
  }

  /// Writes an MNIST-layout directory: train split plain, test split gzip (both are read).
  void write_mnist(const TinyImages& train, const TinyImages& test) {
    write_plain(dir_ / "train-images-idx3-ubyte",
                idx_bytes(0x803, {train.count, train.rows, train.cols}, train.pixels));
    write_plain(dir_ / "train-labels-idx1-ubyte", idx_bytes(0x801, {train.count}, train.labels));
    write_gzip(dir_ / "t10k-images-idx3-ubyte.gz",
               idx_bytes(0x803, {test.count, test.rows, test.cols}, test.pixels));
    write_gzip(dir_ / "t10k-labels-idx1-ubyte.gz", idx_bytes(0x801, {test.count}, test.labels));
  }

  ClassificationOptions mnist_options(const std::string& model = "ffnn") const {
    ClassificationOptions o;
    o.dataset = "mnist";
    o.data_dir = dir_.string();
    o.model = model;
    o.hidden = 16;
    o.dtype = torch::kFloat64;
    o.seed = 3;
    return o;
  }

  fs::path dir_;
};

// ---- the problem on IDX files -------------------------------------------------------------

TEST_F(Classification, ShapesAndNormalization) {
  const TinyImages train = tiny_images(30, 1), test = tiny_images(12, 2);
  write_mnist(train, test);
  ClassificationProblem problem(mnist_options());
  EXPECT_EQ(problem.name(), "mnist");
  EXPECT_FALSE(problem.full_batch());
  EXPECT_EQ(problem.num_samples(), 30);
  EXPECT_EQ(problem.train_images().sizes(), (std::vector<int64_t>{30, 1, 14, 14}));
  EXPECT_EQ(problem.test_images().sizes(), (std::vector<int64_t>{12, 1, 14, 14}));
  EXPECT_EQ(problem.train_images().dtype(), torch::kFloat64);
  EXPECT_EQ(problem.test_labels()[5].item<int64_t>(), test.labels[5]);

  // Mean and std of the training pixels (scaled to [0, 1]), computed here independently.
  double sum = 0, sum_sq = 0;
  for (uint8_t p : train.pixels) {
    sum += p / 255.0;
    sum_sq += (p / 255.0) * (p / 255.0);
  }
  const double n = static_cast<double>(train.pixels.size());
  const double mean = sum / n, std = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(problem.channel_mean()[0].item<double>(), mean, 1e-12);
  EXPECT_NEAR(problem.channel_std()[0].item<double>(), std, 1e-12);
  // Training images are standardized; test images use the training statistics.
  EXPECT_NEAR(problem.train_images().mean().item<double>(), 0.0, 1e-10);
  EXPECT_NEAR(problem.train_images().std(/*unbiased=*/false).item<double>(), 1.0, 1e-10);
  const int64_t k = 7 * 196 + 3 * 14 + 5;  // image 7, row 3, column 5
  EXPECT_NEAR(problem.test_images().flatten()[k].item<double>(),
              (test.pixels[k] / 255.0 - mean) / std, 1e-12);
}

TEST_F(Classification, SubsetsTakeTheFirstSamples) {
  const TinyImages train = tiny_images(30, 1), test = tiny_images(12, 2);
  write_mnist(train, test);
  ClassificationOptions o = mnist_options();
  o.train_subset = 10;
  o.test_subset = 4;
  ClassificationProblem problem(o);
  EXPECT_EQ(problem.num_samples(), 10);
  EXPECT_EQ(problem.test_labels().size(0), 4);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(problem.train_labels()[i].item<int64_t>(), train.labels[i]);
  // The normalization statistics are those of the subset in use.
  EXPECT_NEAR(problem.train_images().mean().item<double>(), 0.0, 1e-10);
  o.train_subset = 1000;  // more than there are: all
  EXPECT_EQ(ClassificationProblem(o).num_samples(), 30);
}

TEST_F(Classification, BatchLossIsTheMeanOfSampleLosses) {
  write_mnist(tiny_images(20, 4), tiny_images(5, 5));
  for (const std::string model : {"ffnn", "cnn"}) {
    ClassificationProblem problem(mnist_options(model));
    const std::vector<int64_t> picks = {3, 17, 0, 9, 3};
    const double batch = problem.loss(torch::tensor(picks)).item<double>();
    double mean = 0;
    for (int64_t i : picks) mean += problem.loss(torch::tensor({i})).item<double>() / picks.size();
    EXPECT_NEAR(batch, mean, 1e-12) << model;
    EXPECT_GT(batch, 0.0);
  }
}

TEST_F(Classification, EvaluateIsTheTestAccuracy) {
  write_mnist(tiny_images(20, 6), tiny_images(13, 7));
  ClassificationOptions o = mnist_options("cnn");
  o.eval_chunk = 5;  // several chunks, the last one partial
  ClassificationProblem problem(o);
  const ddtrain::Metric metric = problem.evaluate();
  EXPECT_EQ(metric.name, "accuracy");
  EXPECT_TRUE(metric.higher_is_better);
  torch::NoGradGuard no_grad;
  const torch::Tensor predicted = problem.classifier().forward(problem.test_images()).argmax(1);
  const double expected = predicted.eq(problem.test_labels()).to(torch::kFloat64).mean().item<double>();
  EXPECT_DOUBLE_EQ(metric.value, expected);
  EXPECT_GE(metric.value, 0.0);
  EXPECT_LE(metric.value, 1.0);
  EXPECT_TRUE(problem.classifier().is_training());  // evaluate() restores the mode
}

TEST_F(Classification, SgdStepsLowerTheLoss) {
  write_mnist(tiny_images(40, 8), tiny_images(40, 9));
  for (const std::string model : {"ffnn", "cnn"}) {
    for (bool batch_norm : {false, true}) {
      ClassificationOptions o = mnist_options(model);
      o.batch_norm = batch_norm;
      o.dtype = torch::kFloat32;
      ClassificationProblem problem(o);
      const torch::Tensor all = torch::arange(problem.num_samples());
      ddtrain::LocalObjective objective(problem.parameters(), [&] { return problem.loss(all); });
      ddtrain::Sgd sgd(ddtrain::SgdOptions{0.1});
      torch::Tensor x = objective.initial_point();
      const double initial_train_loss = problem.train_loss();
      const double first = ddtrain::step(sgd, objective, x).loss;
      for (int k = 0; k < 14; ++k) ddtrain::step(sgd, objective, x);
      const double last = objective.loss(x);
      EXPECT_LT(last, 0.9 * first) << model << " batch norm " << batch_norm;
      EXPECT_LT(problem.train_loss(), initial_train_loss) << model << " batch norm " << batch_norm;
      // Learnable data: the FFNN classifies the held-out bands after so few steps.
      if (model == "ffnn" && !batch_norm) {
        EXPECT_GT(problem.evaluate().value, 0.8);
      }
    }
  }
}

// ---- CIFAR-10 -----------------------------------------------------------------------------

TEST_F(Classification, CifarProblemFromBinaryBatches) {
  std::vector<CifarBatch> train;
  for (unsigned i = 1; i <= 5; ++i) {
    train.push_back(cifar_batch({static_cast<uint8_t>(i), static_cast<uint8_t>(9 - i)}, 10 * i));
    write_plain(dir_ / ("data_batch_" + std::to_string(i) + ".bin"), train.back().file());
  }
  write_plain(dir_ / "test_batch.bin", cifar_batch({4, 2, 0}, 99).file());
  ClassificationOptions o;
  o.dataset = "cifar10";
  o.data_dir = dir_.string();
  o.model = "cnn";
  o.hidden = 8;
  ClassificationProblem problem(o);
  EXPECT_EQ(problem.train_images().sizes(), (std::vector<int64_t>{10, 3, 32, 32}));
  EXPECT_EQ(problem.test_images().sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(problem.train_labels()[2].item<int64_t>(), 2);  // batch 2's first record
  // Per-channel statistics: channel 1 (green) of all ten training images.
  double sum = 0;
  for (const auto& batch : train)
    for (const Bytes& image : batch.images)
      for (size_t k = 1024; k < 2048; ++k) sum += image[k] / 255.0;
  EXPECT_NEAR(problem.channel_mean()[1].item<double>(), sum / (10 * 1024), 1e-12);
  EXPECT_EQ(problem.channel_mean().size(0), 3);
  const torch::Tensor channel_means = problem.train_images().mean({0, 2, 3});
  EXPECT_TRUE(torch::allclose(channel_means, torch::zeros({3}), 0, 1e-5)) << channel_means;
  EXPECT_TRUE(std::isfinite(problem.loss(torch::arange(10)).item<double>()));
  const double accuracy = problem.evaluate().value;
  EXPECT_GE(accuracy, 0.0);
  EXPECT_LE(accuracy, 1.0);
  EXPECT_EQ(problem.parameters().layers().size(), 5u);
}

// ---- errors -------------------------------------------------------------------------------

template <typename Error>
void expect_error(const std::function<void()>& action, const std::vector<std::string>& needles) {
  try {
    action();
    ADD_FAILURE() << "nothing was thrown";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const auto& needle : needles)
      EXPECT_NE(message.find(needle), std::string::npos) << "'" << needle << "' not in: " << message;
  }
}

TEST_F(Classification, ClearErrors) {
  ClassificationOptions o = mnist_options();
  o.data_dir = "";
  expect_error<ddtrain::InvalidArgument>([&] { ClassificationProblem p(o); },
                                         {"--data DIR is required", "'mnist'"});
  o.dataset = "cifar10";
  expect_error<ddtrain::InvalidArgument>([&] { ClassificationProblem p(o); },
                                         {"--data", "'cifar10'"});
  o.dataset = "mnist";
  o.data_dir = (dir_ / "nowhere").string();
  expect_error<ddtrain::IoError>([&] { ClassificationProblem p(o); }, {o.data_dir, "does not exist"});
  o.data_dir = dir_.string();  // exists, but holds no files
  expect_error<ddtrain::IoError>([&] { ClassificationProblem p(o); }, {"train-images-idx3-ubyte"});

  o.model = "resnet";
  EXPECT_NE(o.validate().find("accepted: ffnn, cnn"), std::string::npos) << o.validate();
  expect_error<ddtrain::InvalidArgument>([&] { ClassificationProblem p(o); }, {"model 'resnet'"});
  o.model = "ffnn";
  o.dataset = "svhn";
  EXPECT_NE(o.validate().find("mnist, fashion_mnist, cifar10"), std::string::npos);
  o.dataset = "mnist";
  o.hidden = 0;
  EXPECT_NE(o.validate().find("hidden must be"), std::string::npos);
  o.hidden = 4;
  o.train_subset = -1;
  EXPECT_NE(o.validate().find("train_subset must be"), std::string::npos);
  o.train_subset = 0;
  EXPECT_EQ(o.validate(), "");

  // In-memory data sets are checked too: a label outside [0, num_classes).
  ddtrain::data::ImageDataset images{2, 1, 14, 14, Bytes(2 * 196, 7), {1, 10}, 10};
  expect_error<ddtrain::InvalidArgument>([&] { ClassificationProblem p(o, images, images); },
                                         {"label", "[0, 10)"});

  // The CNN needs images of at least 14x14.
  write_mnist(tiny_images(4, 1, 12, 12), tiny_images(4, 2, 12, 12));
  o.model = "cnn";
  expect_error<ddtrain::InvalidArgument>([&] { ClassificationProblem p(o); }, {"14x14", "12x12"});
}

// ---- the networks -------------------------------------------------------------------------

int64_t layer_size(const ddtrain::FlatParameters& flat, size_t layer) {
  return flat.layers().at(layer).range.size();
}

TEST(Classifiers, FfnnShapesAndLayers) {
  ClassifierOptions o;  // 1 x 28 x 28, hidden 128, 10 classes
  auto net = std::make_shared<Classifier>(o);
  EXPECT_EQ(net->forward(torch::randn({3, 1, 28, 28})).sizes(), (std::vector<int64_t>{3, 10}));
  ddtrain::FlatParameters flat(*net);
  ASSERT_EQ(flat.layers().size(), 2u);
  EXPECT_EQ(flat.layers()[0].name, "fc0");
  EXPECT_EQ(flat.layers()[1].name, "fc1");
  EXPECT_EQ(layer_size(flat, 0), 784 * 128 + 128);
  EXPECT_EQ(layer_size(flat, 1), 128 * 10 + 10);
  EXPECT_THROW(net->forward(torch::randn({3, 1, 28, 27})), ddtrain::InvalidArgument);

  o.batch_norm = true;  // the hidden layer's bias is replaced by the norm's weight and bias
  auto bn = std::make_shared<Classifier>(o);
  ddtrain::FlatParameters bn_flat(*bn);
  ASSERT_EQ(bn_flat.layers().size(), 2u);
  EXPECT_EQ(layer_size(bn_flat, 0), 784 * 128 + 2 * 128);
  EXPECT_EQ(bn->forward(torch::randn({3, 1, 28, 28})).sizes(), (std::vector<int64_t>{3, 10}));
}

TEST(Classifiers, CnnShapesAndLayers) {
  ClassifierOptions o;
  o.model = "cnn";
  o.channels = 3;
  o.height = 32;
  o.width = 30;
  o.hidden = 20;
  o.batch_norm = true;
  auto net = std::make_shared<Classifier>(o);
  EXPECT_EQ(net->forward(torch::randn({4, 3, 32, 30})).sizes(), (std::vector<int64_t>{4, 10}));
  ddtrain::FlatParameters flat(*net);
  const std::vector<std::string> names = {"conv0", "conv1", "fc0", "fc1", "fc2"};
  ASSERT_EQ(flat.layers().size(), names.size());
  for (size_t l = 0; l < names.size(); ++l) EXPECT_EQ(flat.layers()[l].name, names[l]);
  // 32x30 -> conv 28x26 -> pool 14x13 -> conv 10x9; batch norm: no bias, + weight and bias.
  EXPECT_EQ(layer_size(flat, 0), 16 * 3 * 25 + 2 * 16);
  EXPECT_EQ(layer_size(flat, 1), 32 * 16 * 25 + 2 * 32);
  EXPECT_EQ(layer_size(flat, 2), 32 * 10 * 9 * 20 + 2 * 20);
  EXPECT_EQ(layer_size(flat, 3), 20 * 20 + 2 * 20);
  EXPECT_EQ(layer_size(flat, 4), 20 * 10 + 10);
  int64_t total = 0;
  for (const auto& p : net->parameters()) total += p.numel();
  EXPECT_EQ(flat.size(), total);
}

// ---- SyncBatchNorm without MPI ----------------------------------------------------------

/// A stand-in for two ranks that hold IDENTICAL data: every allreduce doubles its tensor.
class TwinComm final : public ddtrain::Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string backend() const override { return "twin"; }
  void allreduce_sum(torch::Tensor& tensor) override {
    tensor.mul_(2);
    ++allreduces;
  }
  using Communicator::allreduce_sum;
  void broadcast(torch::Tensor&, int) override {}
  void barrier() override {}
  std::shared_ptr<Communicator> split(int, int) override { throw std::logic_error("unused"); }
  void abort(int) override { throw std::logic_error("unused"); }
  int allreduces = 0;
};

TEST(SyncBatchNorm, SerialIsTorchBatchNorm) {
  torch::manual_seed(1);
  ddtrain::SyncBatchNorm sync(ddtrain::SyncBatchNormOptions{3});
  torch::nn::BatchNorm2d reference(3);
  sync->to(torch::kFloat64);
  reference->to(torch::kFloat64);
  const torch::Tensor x = torch::randn({6, 3, 4, 5}, torch::kFloat64) * 2 + 1;
  EXPECT_TRUE(torch::allclose(sync->forward(x), reference->forward(x), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(sync->running_var, reference->running_var, 0, 1e-12));
  sync->eval();
  reference->eval();
  EXPECT_TRUE(torch::allclose(sync->forward(x), reference->forward(x), 0, 1e-12));
  sync->train();
  EXPECT_THROW(sync->forward(torch::randn({1, 3}, torch::kFloat64)), ddtrain::InvalidArgument);
  EXPECT_THROW(sync->forward(torch::randn({4, 2}, torch::kFloat64)), ddtrain::InvalidArgument);
}

TEST(SyncBatchNorm, SynchronizedPathEqualsBatchNormOfTheWholeBatch) {
  // Two identical "ranks" (TwinComm): the whole batch is [x; x]. Forward, backward, the
  // parameter gradients summed over the two ranks and the running statistics must equal
  // torch::nn::BatchNorm2d's on [x; x] in one process.
  torch::manual_seed(2);
  auto comm = std::make_shared<TwinComm>();
  ddtrain::SyncBatchNorm sync(ddtrain::SyncBatchNormOptions{3}, comm);
  torch::nn::BatchNorm2d reference(3);
  sync->to(torch::kFloat64);
  reference->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;  // non-trivial affine parameters
    for (auto* bn : {&sync->weight, &sync->bias}) bn->uniform_(0.5, 1.5);
    reference->weight.copy_(sync->weight);
    reference->bias.copy_(sync->bias);
  }
  const torch::Tensor data = torch::randn({5, 3, 2, 3}, torch::kFloat64) * 3 - 2;
  const torch::Tensor upstream = torch::randn({5, 3, 2, 3}, torch::kFloat64);
  torch::Tensor x = data.clone().requires_grad_();
  torch::Tensor y = sync->forward(x);
  (y * upstream).sum().backward();
  EXPECT_EQ(comm->allreduces, 2);  // one in forward, one in backward

  torch::Tensor whole = torch::cat({data, data}).requires_grad_();
  torch::Tensor z = reference->forward(whole);
  (z * torch::cat({upstream, upstream})).sum().backward();
  EXPECT_TRUE(torch::allclose(y, z.narrow(0, 0, 5), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(x.grad(), whole.grad().narrow(0, 0, 5), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(2 * sync->weight.grad(), reference->weight.grad(), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(2 * sync->bias.grad(), reference->bias.grad(), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(sync->running_mean, reference->running_mean, 0, 1e-12));
  EXPECT_TRUE(torch::allclose(sync->running_var, reference->running_var, 0, 1e-12));
}

}  // namespace
