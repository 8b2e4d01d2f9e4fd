// Data-parallel SGD, Adam and L-BFGS on the Poisson PINN in float64: P ranks (strong scaling:
// the serial points split over the ranks) give the serial loss history and parameters.
#include <gtest/gtest.h>

#include "ddtrain/comm/mpi_comm.hpp"
#include "ddtrain/problems/basic.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/train.hpp"

using namespace ddtrain;

namespace {

struct Result {
  std::vector<double> losses;
  torch::Tensor parameters;
};

Result run(const std::string& solver_name, CommunicatorPtr comm, int64_t blocks = 0,
           Scaling scaling = Scaling::kStrong, int epochs = 15) {
  Basic1dOptions o;
  o.points = 64;
  o.blocks = blocks;
  o.scaling = scaling;
  o.network.depth = 2;
  o.network.width = 8;
  o.dtype = torch::kFloat64;
  o.seed = 5;
  o.shard = {comm->rank(), comm->size()};
  ProblemPtr problem = make_poisson1d(o);
  SolverPtr solver;
  if (solver_name == "sgd") solver = std::make_unique<Sgd>(SgdOptions{1e-4, 0.9});
  if (solver_name == "adam") solver = std::make_unique<Adam>(AdamOptions{1e-3});
  if (solver_name == "lbfgs") solver = std::make_unique<Lbfgs>();
  TrainOptions t;
  t.epochs = epochs;
  t.metric_every = 0;
  Result result;
  Callbacks callbacks;
  callbacks.on_iteration = [&](const IterationSummary& row) {
    result.losses.push_back(row.loss);
    // The invariant: the same parameters on every rank after every step.
    torch::Tensor theta = problem->parameters().values().clone();
    return true;
  };
  Layout layout = make_layout(comm, 0);
  Summary summary = train(*problem, *solver, t, layout, callbacks);
  EXPECT_TRUE(summary.succeeded()) << summary.message;
  result.parameters = problem->parameters().values().clone();
  return result;
}

void expect_same_on_all_ranks(Communicator& comm, const torch::Tensor& x) {
  torch::Tensor sum = x.clone();
  comm.allreduce_sum(sum);
  EXPECT_TRUE(torch::equal(sum, x * comm.size()));
}

}  // namespace

class DataParallelParity : public ::testing::TestWithParam<std::string> {};

TEST_P(DataParallelParity, RanksReproduceTheSerialRun) {
  auto world = std::make_shared<MpiComm>();
  Result serial = run(GetParam(), std::make_shared<SelfComm>());
  Result parallel = run(GetParam(), world);
  ASSERT_EQ(serial.losses.size(), parallel.losses.size());
  for (size_t k = 0; k < serial.losses.size(); ++k)
    EXPECT_NEAR(parallel.losses[k], serial.losses[k], 1e-10 * std::abs(serial.losses[k])) << "iteration " << k;
  const double scale = serial.parameters.abs().max().item<double>();
  EXPECT_LE((parallel.parameters - serial.parameters).abs().max().item<double>(), 1e-10 * scale);
  expect_same_on_all_ranks(*world, parallel.parameters);
}

INSTANTIATE_TEST_SUITE_P(Solvers, DataParallelParity, ::testing::Values("sgd", "adam", "lbfgs"));

// --blocks: the same fixed blocks added in the same order, so P ranks give the serial run with
// the same blocks BIT FOR BIT, also with unequal numbers of blocks per rank (6 blocks on 4 ranks)
// and over many iterations where rounding differences would otherwise grow.
class OrderedReductionParity : public ::testing::TestWithParam<Scaling> {};

TEST_P(OrderedReductionParity, RanksReproduceTheSerialRunExactly) {
  auto world = std::make_shared<MpiComm>();
  const int64_t blocks = 6;
  Result serial = run("lbfgs", std::make_shared<SelfComm>(), blocks, GetParam(), 60);
  Result parallel = run("lbfgs", world, blocks, GetParam(), 60);
  ASSERT_EQ(serial.losses.size(), parallel.losses.size());
  for (size_t k = 0; k < serial.losses.size(); ++k)
    EXPECT_EQ(parallel.losses[k], serial.losses[k]) << "iteration " << k;
  EXPECT_TRUE(torch::equal(parallel.parameters, serial.parameters));
  expect_same_on_all_ranks(*world, parallel.parameters);
}

INSTANTIATE_TEST_SUITE_P(Scalings, OrderedReductionParity,
                         ::testing::Values(Scaling::kStrong, Scaling::kWeak),
                         [](const auto& info) { return to_string(info.param); });

TEST(DataParallel, BroadcastOfInitialParametersMakesRanksEqual) {
  auto world = std::make_shared<MpiComm>();
  Basic1dOptions o;
  o.points = 16;
  o.dtype = torch::kFloat64;
  o.seed = 100 + world->rank();  // different initialisations on purpose
  o.shard = {world->rank(), world->size()};
  ProblemPtr problem = make_poisson1d(o);
  Sgd sgd(SgdOptions{1e-5});
  TrainOptions t;
  t.epochs = 2;
  train(*problem, sgd, t, make_layout(world, 0));
  expect_same_on_all_ranks(*world, problem->parameters().values());
}
