// Flat parameters, objectives, partition, line search, L-BFGS memory and the baseline solvers.
#include <gtest/gtest.h>

#include "ddtrain/device.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/flat_parameters.hpp"
#include "ddtrain/models.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/partition.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/solvers/host_values.hpp"
#include "ddtrain/solvers/line_search.hpp"
#include "test_helpers.hpp"

using namespace ddtrain;
using ddtrain::test::FunctionObjective;

namespace {
FullyConnected small_network(int64_t depth = 3, int64_t width = 5) {
  torch::manual_seed(3);
  FullyConnectedOptions o;
  o.depth = depth;
  o.width = width;
  FullyConnected net(o);
  net->to(torch::kFloat64);
  return net;
}
}  // namespace

TEST(FlatParameters, WritingTheFlatVectorChangesTheModule) {
  auto net = small_network();
  FlatParameters flat(*net);
  int64_t expected = 0;
  for (const auto& p : net->parameters()) expected += p.numel();
  ASSERT_EQ(flat.size(), expected);
  flat.values().fill_(0.5);
  for (const auto& p : net->parameters()) EXPECT_TRUE(torch::all(p == 0.5).item<bool>());
  torch::Tensor x = torch::ones({4, 1}, torch::kFloat64);
  // All weights and biases 0.5: the output is a known function of the input.
  EXPECT_NEAR(net->forward(x)[0].item<double>(),
              0.5 * 5 * std::tanh(0.5 * 5 * std::tanh(0.5 * 5 * std::tanh(1.0) + 0.5) + 0.5) + 0.5, 1e-12);
}

TEST(FlatParameters, ValuesAreKeptAndBackwardFillsTheFlatGradient) {
  auto net = small_network();
  std::vector<torch::Tensor> before;
  for (const auto& p : net->parameters()) before.push_back(p.detach().clone());
  FlatParameters flat(*net);
  size_t i = 0;
  for (const auto& p : net->parameters()) EXPECT_TRUE(torch::equal(p, before[i++]));
  torch::Tensor x = torch::linspace(-1, 1, 7, torch::kFloat64).unsqueeze(1);
  net->forward(x).pow(2).sum().backward();
  int64_t offset = 0;
  for (const auto& p : net->parameters()) {
    EXPECT_TRUE(torch::equal(flat.gradients().narrow(0, offset, p.numel()), p.grad().reshape(-1)));
    EXPECT_EQ(p.grad().data_ptr<double>(), flat.gradients().data_ptr<double>() + offset);
    offset += p.numel();
  }
  EXPECT_GT(flat.gradients().abs().sum().item<double>(), 0);
}

TEST(FlatParameters, LayersFollowTopLevelModules) {
  auto net = small_network(3);
  FlatParameters flat(*net);
  ASSERT_EQ(flat.layers().size(), 4u);
  EXPECT_EQ(flat.layers()[0].name, "layer0");
  EXPECT_EQ(flat.layers()[0].range.begin, 0);
  EXPECT_EQ(flat.layers()[3].range.end, flat.size());
  EXPECT_EQ(flat.layers()[1].range.begin, flat.layers()[0].range.end);
}

TEST(LocalObjective, GradientMatchesFiniteDifferences) {
  auto net = small_network();
  FlatParameters flat(*net);
  torch::Tensor x = torch::linspace(-1, 1, 9, torch::kFloat64).unsqueeze(1);
  LocalObjective objective(flat, [&] { return net->forward(x).pow(2).mean(); });
  torch::Tensor theta = objective.initial_point();
  torch::Tensor g = torch::empty_like(theta);
  objective.evaluate(theta, &g);
  for (int64_t k : {0L, 7L, flat.size() - 1}) {
    torch::Tensor e = torch::zeros_like(theta);
    e[k] = 1e-6;
    const double fd = (objective.loss(theta + e) - objective.loss(theta - e)) / 2e-6;
    EXPECT_NEAR(g[k].item<double>(), fd, 1e-7);
  }
  EXPECT_EQ(objective.counters().gradient, 1);
  EXPECT_EQ(objective.counters().loss_only, 6);
}

TEST(SubdomainObjective, RestrictsAndFreezes) {
  auto net = small_network();
  FlatParameters flat(*net);
  torch::Tensor x = torch::linspace(-1, 1, 9, torch::kFloat64).unsqueeze(1);
  LocalObjective full(flat, [&] { return net->forward(x).pow(2).mean(); });
  torch::Tensor theta = full.initial_point();
  torch::Tensor g_full = torch::empty_like(theta);
  full.evaluate(theta, &g_full);
  const Range r = flat.layers()[1].range;
  SubdomainObjective sub(full, {r}, theta.clone());
  torch::Tensor xs = sub.initial_point();
  torch::Tensor gs = torch::empty_like(xs);
  sub.evaluate(xs, &gs);
  EXPECT_TRUE(torch::allclose(gs, g_full.narrow(0, r.begin, r.size()), 1e-14, 1e-14));
  // Parameters outside the subdomain were frozen during the evaluation, and are trainable again.
  for (const auto& p : net->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(OrderedDistributedObjective, AddsTheBlocksInOrder) {
  auto net = small_network();
  FlatParameters flat(*net);
  std::vector<torch::Tensor> blocks;
  for (int b = 0; b < 3; ++b) blocks.push_back(torch::linspace(-1 + b, -0.5 + b, 4 + b, torch::kFloat64).unsqueeze(1));
  std::vector<std::unique_ptr<LocalObjective>> parts;
  std::vector<Objective*> pointers;
  for (const torch::Tensor& x : blocks) {
    parts.push_back(std::make_unique<LocalObjective>(flat, [&net, x] { return net->forward(x).pow(2).sum() / 15; }));
    pointers.push_back(parts.back().get());
  }
  OrderedDistributedObjective ordered(pointers, 0, 3, std::make_shared<SelfComm>());
  torch::Tensor theta = ordered.initial_point();
  torch::Tensor g = torch::empty_like(theta);
  const double loss = ordered.evaluate(theta, &g);
  // Bit for bit: block losses and gradients added in block order.
  double expected_loss = 0;
  torch::Tensor expected_g, gb = torch::empty_like(theta);
  for (Objective* part : pointers) {
    expected_loss += part->evaluate(theta, &gb);
    expected_g = expected_g.defined() ? expected_g + gb : gb.clone();
  }
  EXPECT_EQ(loss, expected_loss);
  EXPECT_TRUE(torch::equal(g, expected_g));
  EXPECT_EQ(ordered.loss(theta), loss);
  // And the same function as all points at once (to rounding).
  torch::Tensor all = torch::cat(blocks);
  LocalObjective whole(flat, [&] { return net->forward(all).pow(2).sum() / 15; });
  torch::Tensor g_whole = torch::empty_like(theta);
  EXPECT_NEAR(whole.evaluate(theta, &g_whole), loss, 1e-14);
  EXPECT_TRUE(torch::allclose(g, g_whole, 1e-12, 1e-14));
  EXPECT_THROW(OrderedDistributedObjective({}, 0, 3, std::make_shared<SelfComm>()), InvalidArgument);
  EXPECT_THROW(OrderedDistributedObjective(pointers, 1, 3, std::make_shared<SelfComm>()), InvalidArgument);
}

TEST(SelfComm, AStartedAllreduceHasFinishedAndLeavesTheTensor) {
  SelfComm self;
  torch::Tensor t = torch::arange(5, torch::kFloat64);
  PendingCollectivePtr pending = self.start_allreduce_sum(t);
  EXPECT_TRUE(pending->test());
  pending->wait();
  EXPECT_TRUE(torch::equal(t, torch::arange(5, torch::kFloat64)));
  torch::Tensor strided = torch::zeros({3, 3}, torch::kFloat64).t();
  EXPECT_THROW(self.start_allreduce_sum(strided), CommError);
}

TEST(Partition, LayerwiseIsBalancedAndCoversAllLayers) {
  auto net = small_network(6);  // 7 layers
  FlatParameters flat(*net);
  Partition p = Partition::layerwise(flat.layers(), 3);
  ASSERT_EQ(p.size(), 3);
  EXPECT_EQ(p[0].layers, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(p[1].layers, (std::vector<int>{3, 4}));
  EXPECT_EQ(p[2].layers, (std::vector<int>{5, 6}));
  EXPECT_TRUE(p.disjoint());
  EXPECT_TRUE(torch::all(p.multiplicity(torch::kFloat64) == 1).item<bool>());
  Partition overlapping = Partition::layerwise(flat.layers(), 3, 1);
  EXPECT_FALSE(overlapping.disjoint());
  EXPECT_EQ(overlapping.multiplicity(torch::kFloat64)[flat.layers()[2].range.begin].item<double>(), 2);
  EXPECT_THROW(Partition::layerwise(flat.layers(), 8), InvalidArgument);
  EXPECT_THROW(Partition::layerwise(flat.layers(), 0), InvalidArgument);
}

TEST(Partition, ExplicitSpecIsValidated) {
  auto net = small_network(5);  // 6 layers
  FlatParameters flat(*net);
  Partition p = Partition::from_spec(flat.layers(), "0-1,2-3,4-5");
  EXPECT_EQ(p.size(), 3);
  EXPECT_EQ(p[2].ranges.back().end, flat.size());
  EXPECT_THROW(Partition::from_spec(flat.layers(), "0-1,2-3"), InvalidArgument);     // uncovered
  EXPECT_THROW(Partition::from_spec(flat.layers(), "0-2,2-5"), InvalidArgument);     // twice
  EXPECT_THROW(Partition::from_spec(flat.layers(), "0-1,x,2-5"), InvalidArgument);   // malformed
  EXPECT_THROW(Partition::from_spec(flat.layers(), "0-1,2-9"), InvalidArgument);     // range
  Partition named = Partition::from_parameter_names(flat, {{"layer0.weight", "layer0.bias"}, {"layer1.weight"}});
  EXPECT_EQ(named[0].ranges.size(), 1u);
  EXPECT_THROW(Partition::from_parameter_names(flat, {{"nope"}}), InvalidArgument);
}

TEST(HostValues, EqualEachScalarsItemInOrder) {
  torch::manual_seed(5);
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const torch::Tensor a = torch::randn({100}, dtype), b = torch::randn({100}, dtype);
    const auto [dot, norm, largest] = host_values(a.dot(b), a.norm(), b.abs().max());
    EXPECT_EQ(dot, a.dot(b).item<double>());
    EXPECT_EQ(norm, a.norm().item<double>());
    EXPECT_EQ(largest, b.abs().max().item<double>());
  }
}

TEST(LineSearch, StrongWolfeConditionsHold) {
  test::Quadratic q(6);
  FunctionObjective objective([&](const torch::Tensor& x) { return q(x); }, torch::zeros({6}, torch::kFloat64));
  torch::Tensor x = torch::full({6}, 2.0, torch::kFloat64);
  torch::Tensor g = torch::empty_like(x);
  const double f0 = objective.evaluate(x, &g);
  for (double scale : {1e-3, 1.0, 50.0}) {
    torch::Tensor d = -g * scale;
    LineSearchOptions o;
    LineSearchResult r = line_search(objective, x, f0, g, d, 1.0, o);
    const double gtd0 = g.dot(d).item<double>();
    ASSERT_TRUE(r.wolfe) << "scale " << scale;
    EXPECT_LE(r.loss, f0 + o.c1 * r.step * gtd0);
    EXPECT_LE(std::abs(r.gradient.dot(d).item<double>()), o.c2 * std::abs(gtd0));
    EXPECT_LE(r.evaluations, o.max_evaluations);
  }
}

TEST(LineSearch, NonFiniteTrialShrinksTheStep) {
  // f = x^2 for |x| < 1, NaN beyond: a step of 10 along -x from 0.9 must be shortened.
  FunctionObjective objective(
      [](const torch::Tensor& x) {
        torch::Tensor v = x.pow(2).sum();
        return x.abs().max().item<double>() >= 1 ? v * std::nan("") : v;
      },
      torch::zeros({1}, torch::kFloat64));
  torch::Tensor x = torch::full({1}, 0.9, torch::kFloat64);
  torch::Tensor g = torch::empty_like(x);
  const double f0 = objective.evaluate(x, &g);
  for (auto type : {LineSearchType::kStrongWolfe, LineSearchType::kArmijo}) {
    LineSearchOptions o;
    o.type = type;
    LineSearchResult r = line_search(objective, x, f0, g, -g, 10.0, o);
    EXPECT_TRUE(r.decreased);
    EXPECT_TRUE(std::isfinite(r.loss));
    EXPECT_LT(r.loss, f0);
  }
}

TEST(LbfgsMemory, SkipsPairsWithoutCurvature) {
  LbfgsMemory memory(3);
  torch::Tensor s = torch::ones({4}, torch::kFloat64);
  EXPECT_FALSE(memory.push(s, -s));
  EXPECT_EQ(memory.skipped(), 1);
  EXPECT_TRUE(memory.push(s, 2 * s));
  EXPECT_DOUBLE_EQ(memory.gamma(), 0.5);
  // For a quadratic with A = 2I, H g = g / 2 exactly once a pair is stored.
  torch::Tensor g = torch::randn({4}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(memory.apply_inverse_hessian(g), g / 2));
}

TEST(Lbfgs, SolvesRosenbrockToTightGradient) {
  FunctionObjective objective(test::rosenbrock, torch::tensor({-1.2, 1.0, -1.2, 1.0}, torch::kFloat64));
  Lbfgs solver;
  torch::Tensor x = objective.initial_point();
  int iterations = 0;
  StepSummary s;
  torch::Tensor g = torch::empty_like(x);
  for (; iterations < 100; ++iterations) {
    s = step(solver, objective, x);
    objective.evaluate(x, &g);
    if (g.norm().item<double>() < 1e-8) break;
  }
  EXPECT_LT(iterations, 100);
  EXPECT_TRUE(torch::allclose(x, torch::ones_like(x), 0, 1e-7));
}

TEST(Lbfgs, QuadraticConvergesAndReportsConvergence) {
  test::Quadratic q(10);
  FunctionObjective objective([&](const torch::Tensor& x) { return q(x); }, torch::zeros({10}, torch::kFloat64));
  Lbfgs solver;
  torch::Tensor x = objective.initial_point();
  StepSummary s;
  for (int k = 0; k < 60 && s.termination == Termination::kRunning; ++k) s = step(solver, objective, x);
  EXPECT_EQ(s.termination, Termination::kConverged) << s.message;
  EXPECT_TRUE(torch::allclose(x, q.minimizer(), 0, 1e-7));
}

TEST(SgdAndAdam, MinimiseAQuadratic) {
  test::Quadratic q(5);
  for (int which = 0; which < 3; ++which) {
    FunctionObjective objective([&](const torch::Tensor& x) { return q(x); }, torch::zeros({5}, torch::kFloat64));
    SolverPtr solver;
    if (which == 0) solver = std::make_unique<Sgd>(SgdOptions{0.1, 0.0, false, 0.0});
    if (which == 1) solver = std::make_unique<Sgd>(SgdOptions{0.05, 0.9, true, 0.0});
    if (which == 2) solver = std::make_unique<Adam>(AdamOptions{0.05});
    torch::Tensor x = objective.initial_point();
    for (int k = 0; k < 3000; ++k) step(*solver, objective, x);
    EXPECT_TRUE(torch::allclose(x, q.minimizer(), 0, 1e-5)) << solver->name() << which;
  }
}

TEST(Options, InvalidValuesAreRejected) {
  EXPECT_THROW(Sgd(SgdOptions{-1.0}), InvalidArgument);
  EXPECT_THROW(Sgd(SgdOptions{0.1, 0.0, true}), InvalidArgument);
  EXPECT_THROW(Adam(AdamOptions{0.0}), InvalidArgument);
  LbfgsOptions o;
  o.history = 0;
  EXPECT_THROW(Lbfgs{o}, InvalidArgument);
  o = LbfgsOptions{};
  o.line_search.c2 = 1e-5;
  EXPECT_THROW(Lbfgs{o}, InvalidArgument);
}

TEST(ParseDevice, NamesTheDeviceOrRefusesTheText) {
  EXPECT_EQ(ddtrain::parse_device("cpu"), torch::Device(torch::kCPU));
  for (const char* bad : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:1x", "cuda:-1", ""})
    EXPECT_THROW(ddtrain::parse_device(bad), ddtrain::InvalidArgument) << bad;
  if (torch::cuda::is_available()) {
    const auto count = static_cast<int>(torch::cuda::device_count());
    EXPECT_EQ(ddtrain::parse_device("cuda", count + 1).index(), (count + 1) % count);
    EXPECT_THROW(ddtrain::parse_device("cuda:" + std::to_string(count)), ddtrain::InvalidArgument);
  } else {
    try {
      ddtrain::parse_device("cuda:0");
      ADD_FAILURE() << "cuda:0 accepted without a GPU";
    } catch (const ddtrain::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device is available"), std::string::npos) << e.what();
    }
  }
}
