// SAPTS and APTS through the training driver: P ranks give the same iterates as one process
// owning all subdomains (float64, 1e-10 relative), and the same parameters on every rank.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ddtrain/comm/mpi_comm.hpp"
#include "ddtrain/solvers/sapts.hpp"
#include "ddtrain/train.hpp"

using namespace ddtrain;

namespace {

/// Three-class points in the plane and a 2-6-6-6-3 tanh network (4 parameter layers) in
/// float64; every process holds all data (the driver splits mini-batches into micro-batches).
class TinyClassification final : public Problem {
 public:
  explicit TinyClassification(int64_t n) : n_(n) {
    torch::manual_seed(42);  // before the layers: their initialisation draws from it
    model_ = torch::nn::Sequential(
        torch::nn::Linear(2, 6), torch::nn::Functional(torch::tanh), torch::nn::Linear(6, 6),
        torch::nn::Functional(torch::tanh), torch::nn::Linear(6, 6),
        torch::nn::Functional(torch::tanh), torch::nn::Linear(6, 3));
    model_->to(torch::kFloat64);
    parameters_ = std::make_unique<FlatParameters>(*model_);
    inputs_ = torch::randn({n, 2}, torch::kFloat64);
    torch::Tensor angle = torch::atan2(inputs_.select(1, 1), inputs_.select(1, 0)) + M_PI;
    labels_ = (angle / (2 * M_PI / 3)).floor().clamp(0, 2).to(torch::kLong);
  }
  std::string name() const override { return "tiny"; }
  FlatParameters& parameters() override { return *parameters_; }
  torch::nn::Module& model() override { return *model_; }
  bool full_batch() const override { return false; }
  int64_t num_samples() const override { return n_; }
  /// Samples passed to loss() (forward passes, with or without gradient).
  int64_t samples_evaluated = 0;
  torch::Tensor loss(const torch::Tensor& indices) override {
    samples_evaluated += indices.numel();
    return torch::nn::functional::cross_entropy(model_->forward(inputs_.index_select(0, indices)),
                                                labels_.index_select(0, indices));
  }
  Metric evaluate() override {
    torch::NoGradGuard no_grad;
    torch::Tensor predicted = model_->forward(inputs_).argmax(1);
    return {"accuracy", predicted.eq(labels_).to(torch::kFloat64).mean().item<double>(), true};
  }

 private:
  int64_t n_;
  torch::nn::Sequential model_{nullptr};
  std::unique_ptr<FlatParameters> parameters_;
  torch::Tensor inputs_, labels_;
};

struct TrainingRun {
  torch::Tensor parameters;
  std::vector<double> losses;
  std::vector<bool> accepted;
  Summary summary;
  int64_t samples_evaluated = 0;  ///< by this rank
};

/// Trains a fresh problem; `partition_count` > 0: a layer-wise partition with that many subdomains.
TrainingRun train_with(Solver& solver, const TrainOptions& options, const Layout& layout,
               int partition_count = 0) {
  TinyClassification problem(96);
  Partition partition;
  if (partition_count > 0)
    partition = Partition::layerwise(problem.parameters().layers(), partition_count);
  TrainingRun run;
  Callbacks callbacks;
  callbacks.on_iteration = [&run](const IterationSummary& row) {
    run.losses.push_back(row.loss);
    run.accepted.push_back(row.accepted);
    return true;
  };
  run.summary = train(problem, solver, options, layout, callbacks,
                      partition_count > 0 ? &partition : nullptr);
  run.parameters = problem.parameters().values().clone();
  run.samples_evaluated = problem.samples_evaluated;
  return run;
}

void expect_same_run(const TrainingRun& serial, const TrainingRun& parallel,
                     Communicator& world) {
  ASSERT_EQ(serial.losses.size(), parallel.losses.size());
  double worst = 0;
  for (size_t k = 0; k < serial.losses.size(); ++k) {
    worst = std::max(worst, std::abs(parallel.losses[k] / serial.losses[k] - 1));
    EXPECT_NEAR(parallel.losses[k], serial.losses[k], 1e-10 * std::abs(serial.losses[k]))
        << "iteration " << k;
    EXPECT_EQ(parallel.accepted[k], serial.accepted[k]) << "iteration " << k;
  }
  const double difference = (parallel.parameters - serial.parameters).norm().item<double>();
  EXPECT_LE(difference, 1e-10 * serial.parameters.norm().item<double>());
  if (world.rank() == 0)
    std::printf("    %zu iterations: max relative loss difference %.1e, relative parameter "
                "difference %.1e\n", serial.losses.size(), worst,
                difference / serial.parameters.norm().item<double>());
  // The same parameters on every rank, bit for bit.
  torch::Tensor root = parallel.parameters.clone();
  world.broadcast(root, 0);
  const double mismatch = world.allreduce_sum(torch::equal(root, parallel.parameters) ? 0.0 : 1.0);
  EXPECT_EQ(mismatch, 0.0);
  // Not a trivial run: the loss went down and steps were accepted.
  EXPECT_LT(serial.losses.back(), serial.losses.front());
  int accepted = 0;
  for (bool a : serial.accepted) accepted += a;
  EXPECT_GT(accepted, 0);
}

TrainOptions mini_batch_options(int data_subdomains) {
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 24;  // 4 mini-batches per epoch: 12 iterations
  o.seed = 5;
  o.data_subdomains = data_subdomains;
  return o;
}

}  // namespace

TEST(SaptsMpi, PRanksEqualOneProcessWithPMicroBatches) {
  auto world = std::make_shared<MpiComm>();
  const int p = world->size();
  for (int per_rank : {1, 2}) {  // N = P and N = 2P micro-batches
    for (TrustRegionModel model : {TrustRegionModel::kFirstOrder, TrustRegionModel::kLsr1}) {
      SaptsOptions options;
      options.global.model = options.local.model = model;
      Sapts serial_solver(options), parallel_solver(options);
      const int n = per_rank * p;
      TrainingRun serial = train_with(serial_solver, mini_batch_options(n),
                              make_layout(std::make_shared<SelfComm>(), 0));
      TrainingRun parallel =
          train_with(parallel_solver, mini_batch_options(n), make_layout(world, 0));
      SCOPED_TRACE("N = " + std::to_string(n) + ", model " + to_string(model));
      expect_same_run(serial, parallel, *world);
      EXPECT_EQ(parallel.summary.iterations, 12);
    }
  }
}

// No redundant work: the ranks together evaluate exactly what one process evaluates, and a
// step evaluates each sample at most three times (at x_k, at its local trial, at the combined
// trial; one local step, no global pass), each rank only its own micro-batches.
TEST(SaptsMpi, EachRankEvaluatesOnlyItsShareOncePerStage) {
  auto world = std::make_shared<MpiComm>();
  const int p = world->size();
  SaptsOptions options;
  options.local_steps = 1;
  Sapts serial_solver(options), parallel_solver(options);
  const TrainOptions o = mini_batch_options(p);
  TrainingRun serial =
      train_with(serial_solver, o, make_layout(std::make_shared<SelfComm>(), 0));
  TrainingRun parallel = train_with(parallel_solver, o, make_layout(world, 0));
  expect_same_run(serial, parallel, *world);
  const int64_t iterations = parallel.summary.iterations;
  ASSERT_EQ(iterations, 12);
  const double total = world->allreduce_sum(static_cast<double>(parallel.samples_evaluated));
  EXPECT_EQ(total, static_cast<double>(serial.samples_evaluated));
  EXPECT_LE(serial.samples_evaluated, 3 * o.batch_size * iterations);
  // 24 samples in P equal micro-batches (P divides 24 for P = 2, 3, 4).
  if (o.batch_size % p == 0) {
    EXPECT_LE(parallel.samples_evaluated, 3 * (o.batch_size / p) * iterations);
  }
  if (world->rank() == 0)
    std::printf("    samples evaluated in %lld iterations: serial %lld, rank 0 of %d %lld\n",
                static_cast<long long>(iterations), static_cast<long long>(serial.samples_evaluated),
                p, static_cast<long long>(parallel.samples_evaluated));
}

TEST(SaptsMpi, BatchGrowthThroughTheDriver) {
  auto world = std::make_shared<MpiComm>();
  SaptsOptions options;
  options.batch_growth.enabled = true;
  options.batch_growth.patience = 1;
  options.batch_growth.tolerance = 0.99;  // every epoch after the first counts as stalled
  Sapts solver(options);
  TrainOptions o = mini_batch_options(0);
  o.epochs = 6;
  std::vector<int> per_epoch(6, 0);
  TinyClassification problem(96);
  Callbacks callbacks;
  callbacks.on_iteration = [&](const IterationSummary& row) {
    ++per_epoch[static_cast<int>(std::ceil(row.epoch)) - 1];
    return true;
  };
  train(problem, solver, o, make_layout(world, 0), callbacks);
  // 96 samples, batch 24 -> 24 -> 36 -> 54 -> 81 -> 96.
  EXPECT_EQ(per_epoch, (std::vector<int>{4, 4, 3, 2, 2, 1}));
}

TEST(AptsMpi, PRanksEqualOneProcessOwningAllSubdomains) {
  auto world = std::make_shared<MpiComm>();
  const int p = world->size();
  if (p > 4) GTEST_SKIP() << "the test network has 4 parameter layers";
  for (TrustRegionModel model : {TrustRegionModel::kFirstOrder, TrustRegionModel::kLsr1}) {
    AptsOptions options;
    options.global.model = options.local.model = model;
    Apts serial_solver(options), parallel_solver(options);
    TrainingRun serial = train_with(serial_solver, mini_batch_options(0),
                            make_layout(std::make_shared<SelfComm>(), 0), p);
    // One rank per subdomain group: each evaluates the whole mini-batch, owns subdomain rank.
    TrainingRun parallel =
        train_with(parallel_solver, mini_batch_options(0), make_layout(world, 1), p);
    SCOPED_TRACE("model " + to_string(model));
    expect_same_run(serial, parallel, *world);
    // The global objective (start point, combined trial, global pass) is spread over all
    // ranks and each local solve runs on its owner only: together the ranks evaluate exactly
    // the samples one process does.
    const double total = world->allreduce_sum(static_cast<double>(parallel.samples_evaluated));
    EXPECT_EQ(total, static_cast<double>(serial.samples_evaluated));
  }
}
