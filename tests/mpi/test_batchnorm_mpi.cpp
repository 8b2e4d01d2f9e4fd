// Synchronized batch norm on P ranks, each holding an (unequal) slice of one batch, against
// torch's batch norm on the whole batch in one process: outputs, input gradients, parameter
// gradients (summed over the ranks) and running statistics, float64, 1e-10. Then the same for a
// whole CNN with batch norm inside the data-parallel objective of a classification problem.
#include <gtest/gtest.h>

#include <random>

#include "ddtrain/comm/mpi_comm.hpp"
#include "ddtrain/data/dataset.hpp"
#include "ddtrain/models/classifiers.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/problems/classification.hpp"
#include "ddtrain/solvers/sapts.hpp"
#include "ddtrain/train.hpp"

using namespace ddtrain;

namespace {

constexpr double kTol = 1e-10;

bool close(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && torch::allclose(a, b, kTol, kTol);
}

/// Rank r holds r + 2 consecutive samples of the batch: [begin(r), begin(r) + r + 2).
int64_t slice_begin(int r) { return static_cast<int64_t>(r) * (r + 3) / 2; }
int64_t batch_size(int p) { return slice_begin(p); }

/// One check for input shape (B, C, rest...), `Reference` torch::nn::BatchNorm1d or 2d.
template <typename Reference>
void check_against_whole_batch(std::vector<int64_t> rest) {
  auto comm = std::make_shared<MpiComm>();
  const int p = comm->size(), r = comm->rank();
  const int64_t b = batch_size(p), c = 3;
  std::vector<int64_t> shape = {b, c};
  shape.insert(shape.end(), rest.begin(), rest.end());

  torch::manual_seed(11);  // the same batch, upstream weights and affine parameters everywhere
  const torch::Tensor data = torch::randn(shape, torch::kFloat64) * 2 + 0.5;
  const torch::Tensor upstream = torch::randn(shape, torch::kFloat64);
  SyncBatchNorm sync(SyncBatchNormOptions{c}, comm);
  Reference reference(c);
  sync->to(torch::kFloat64);
  reference->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    sync->weight.uniform_(0.5, 1.5);
    sync->bias.uniform_(-1, 1);
    reference->weight.copy_(sync->weight);
    reference->bias.copy_(sync->bias);
  }

  // This rank: its share of the mean loss (1/B) sum_i <y_i, u_i> over its slice.
  const int64_t begin = slice_begin(r), size = r + 2;
  torch::Tensor x = data.narrow(0, begin, size).clone().requires_grad_();
  torch::Tensor y = sync->forward(x);
  ((y * upstream.narrow(0, begin, size)).sum() / b).backward();
  torch::Tensor weight_grad = sync->weight.grad().clone(), bias_grad = sync->bias.grad().clone();
  comm->allreduce_sum(weight_grad);
  comm->allreduce_sum(bias_grad);

  torch::Tensor whole = data.clone().requires_grad_();
  torch::Tensor z = reference->forward(whole);
  ((z * upstream).sum() / b).backward();

  EXPECT_TRUE(close(y, z.narrow(0, begin, size))) << "outputs, rank " << r;
  EXPECT_TRUE(close(x.grad(), whole.grad().narrow(0, begin, size))) << "input gradient, rank " << r;
  EXPECT_TRUE(close(weight_grad, reference->weight.grad())) << "weight gradient";
  EXPECT_TRUE(close(bias_grad, reference->bias.grad())) << "bias gradient";
  EXPECT_TRUE(close(sync->running_mean, reference->running_mean));
  EXPECT_TRUE(close(sync->running_var, reference->running_var));
  // Evaluation mode: the running statistics, no communication.
  sync->eval();
  reference->eval();
  EXPECT_TRUE(close(sync->forward(x.detach()), reference->forward(x.detach())));
}

}  // namespace

TEST(SyncBatchNormMpi, Conv2dInputMatchesWholeBatch) {
  check_against_whole_batch<torch::nn::BatchNorm2d>({4, 5});
}

TEST(SyncBatchNormMpi, LinearInputMatchesWholeBatch) {
  check_against_whole_batch<torch::nn::BatchNorm1d>({});
}

TEST(SyncBatchNormMpi, CnnProblemDataParallelEqualsSerial) {
  // The data-parallel objective of a CNN with batch norm over the ranks' parts of one
  // mini-batch equals the serial objective of the whole mini-batch.
  auto comm = std::make_shared<MpiComm>();
  const int p = comm->size(), r = comm->rank();
  data::ImageDataset train{40, 1, 14, 14, {}, {}, 10};
  std::mt19937 random(5);
  for (int64_t i = 0; i < train.count * 196; ++i) train.pixels.push_back(random() % 256);
  for (int64_t i = 0; i < train.count; ++i) train.labels.push_back(random() % 10);
  data::ImageDataset test = train;

  ClassificationOptions options;
  options.dataset = "mnist";
  options.model = "cnn";
  options.hidden = 12;
  options.batch_norm = true;
  options.dtype = torch::kFloat64;
  options.seed = 9;
  ClassificationProblem serial(options, train, test);
  options.comm = comm;
  ClassificationProblem distributed(options, train, test);

  torch::manual_seed(3);
  const torch::Tensor batch = torch::randperm(40, torch::kLong).narrow(0, 0, batch_size(p));
  const torch::Tensor mine = batch.narrow(0, slice_begin(r), r + 2);
  const double share = static_cast<double>(r + 2) / static_cast<double>(batch.numel());
  LocalObjective local(distributed.parameters(), [&] { return distributed.loss(mine) * share; });
  DistributedObjective global(local, comm);
  LocalObjective whole(serial.parameters(), [&] { return serial.loss(batch); });

  const torch::Tensor x = whole.initial_point();
  ASSERT_TRUE(torch::equal(x, global.initial_point()));  // same seed, same initial weights
  torch::Tensor g = torch::empty_like(x), g_serial = torch::empty_like(x);
  const double loss = global.evaluate(x, &g);
  const double loss_serial = whole.evaluate(x, &g_serial);
  EXPECT_NEAR(loss, loss_serial, kTol * std::abs(loss_serial));
  EXPECT_TRUE(close(g, g_serial)) << "max difference " << (g - g_serial).abs().max().item<double>();
  EXPECT_GT(g_serial.abs().max().item<double>(), 1e-3);  // a real gradient was compared
  // The running statistics followed the whole mini-batch, so evaluation agrees too.
  EXPECT_DOUBLE_EQ(distributed.evaluate().value, serial.evaluate().value);
  EXPECT_NEAR(distributed.train_loss(), serial.train_loss(), kTol);

  // Unsynchronized, a rank's loss uses only its own part of the batch (no communication).
  distributed.set_batch_norm_synchronized(false);
  serial.parameters().values().copy_(x);
  distributed.parameters().values().copy_(x);
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(distributed.loss(mine).item<double>(), serial.loss(mine).item<double>(), kTol);
}

TEST(SyncBatchNormMpi, SaptsWithBatchNormOnPRanksEqualsTheSerialEmulation) {
  // SAPTS's local solves evaluate micro-batch objectives independently on each rank: with batch
  // norm they use the micro-batch's statistics (Problem::local_loss, no collective, running
  // statistics untouched), the global tests the whole mini-batch's (synchronized). P ranks then
  // train exactly as one process emulating the same micro-batches.
  auto world = std::make_shared<MpiComm>();
  const int p = world->size();
  data::ImageDataset train{48, 1, 14, 14, {}, {}, 10};
  std::mt19937 random(11);
  for (int64_t i = 0; i < train.count * 196; ++i) train.pixels.push_back(random() % 256);
  for (int64_t i = 0; i < train.count; ++i) train.labels.push_back(random() % 10);
  ClassificationOptions options;
  options.dataset = "mnist";
  options.model = "ffnn";
  options.hidden = 12;
  options.batch_norm = true;
  options.dtype = torch::kFloat64;
  options.seed = 9;
  ClassificationProblem serial(options, train, train);
  options.comm = world;
  ClassificationProblem parallel(options, train, train);
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 24;
  o.seed = 5;
  o.data_subdomains = p;
  Sapts serial_solver(SaptsOptions{}), parallel_solver(SaptsOptions{});
  const Summary a = ddtrain::train(serial, serial_solver, o, make_layout(std::make_shared<SelfComm>()));
  const Summary b = ddtrain::train(parallel, parallel_solver, o, make_layout(world));
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_NEAR(a.final_loss, b.final_loss, kTol * std::abs(a.final_loss));
  EXPECT_TRUE(close(serial.parameters().values(), parallel.parameters().values()))
      << "max difference "
      << (serial.parameters().values() - parallel.parameters().values()).abs().max().item<double>();
  EXPECT_LT(a.final_loss, a.initial_loss);
}
