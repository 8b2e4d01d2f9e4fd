// The Allen–Cahn PINN problem and its collocation sampling: the autograd residual against a
// manufactured solution, the hard constraints, shard splits and loss shares, the metric, the
// reference-grid output, resampling, causal weighting, option validation, and that training
// lowers the loss.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/problems/allen_cahn.hpp"
#include "ddtrain/problems/pinn_sampling.hpp"
#include "ddtrain/reference/mat_file.hpp"
#include "ddtrain/solvers/bfgs.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/train.hpp"

namespace ddtrain {
namespace {

constexpr double kPi = 3.14159265358979323846;
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// A small reference grid (fast to solve) unless a test needs the published one.
const reference::ReferenceField& small_reference() {
  static const reference::ReferenceField field = [] {
    reference::AllenCahnReferenceOptions o;
    o.nx = 64;
    o.nt_out = 11;
    return reference::solve_allen_cahn(o);
  }();
  return field;
}

/// A tiny float64 problem: ResNet 3 x 12, few points.
AllenCahnOptions tiny_options(Constraints constraints = Constraints::kHard) {
  AllenCahnOptions o;
  o.nf = 203;
  o.n0 = 37;
  o.nb = 29;
  o.depth = 3;
  o.width = 12;
  o.dtype = torch::kFloat64;
  o.constraints = constraints;
  o.seed = 11;
  return o;
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "ddtrain_allen_cahn_" + name;
}

// ---- the residual -------------------------------------------------------------------------

TEST(AllenCahnResidual, EqualsTheAnalyticResidualOfAManufacturedFunction) {
  // u = sin(pi x) e^-t + x^2 t / 2: u_t = -sin(pi x) e^-t + x^2 / 2,
  // u_xx = -pi^2 sin(pi x) e^-t + t.
  const double nu = 0.3, rho = 5.0;
  auto u = [](const torch::Tensor& xt) {
    const torch::Tensor x = xt.select(1, 0), t = xt.select(1, 1);
    return torch::sin(kPi * x) * torch::exp(-t) + 0.5 * x * x * t;
  };
  const torch::Tensor xt = torch::rand({100, 2}, kF64) * 2 - 1;
  const torch::Tensor x = xt.select(1, 0), t = xt.select(1, 1);
  const torch::Tensor value = u(xt);
  const torch::Tensor u_t = -torch::sin(kPi * x) * torch::exp(-t) + 0.5 * x * x;
  const torch::Tensor u_xx = -kPi * kPi * torch::sin(kPi * x) * torch::exp(-t) + t;
  const torch::Tensor expected = u_t - nu * u_xx + rho * (value.pow(3) - value);

  const torch::Tensor r = allen_cahn_residual(u, xt, nu, rho);
  ASSERT_EQ(r.sizes(), (std::vector<int64_t>{100}));
  EXPECT_LT((r - expected).abs().max().item<double>(), 1e-12);
  // Also without a graph, under NoGradGuard (a solver's loss-only trial), and on (n, 1) output.
  torch::NoGradGuard no_grad;
  auto column = [&](const torch::Tensor& p) { return u(p).unsqueeze(1); };
  const torch::Tensor r2 = allen_cahn_residual(column, xt, nu, rho, /*create_graph=*/false);
  EXPECT_LT((r2 - expected).abs().max().item<double>(), 1e-12);
}

TEST(AllenCahnResidual, ProblemLossIsTheMeanSquaredResidualOfItsPrediction) {
  AllenCahnProblem problem(tiny_options(), small_reference());
  const torch::Tensor r =
      allen_cahn_residual([&](const torch::Tensor& xt) { return problem.predict(xt); },
                          problem.residual_points(), 1e-4, 5.0);
  EXPECT_NEAR(problem.loss({}).item<double>(), r.square().mean().item<double>(), 1e-14);
}

TEST(AllenCahnResidual, LossHasAGradientEvenUnderNoGradGuard) {
  AllenCahnProblem problem(tiny_options(), small_reference());
  LocalObjective objective(problem.parameters(), [&] { return problem.loss({}); });
  torch::NoGradGuard no_grad;  // the solvers evaluate objectives in no-grad mode
  torch::Tensor g = torch::zeros({objective.dimension()}, kF64);
  const double loss = objective.evaluate(problem.parameters().values().clone(), &g);
  EXPECT_GT(loss, 0);
  EXPECT_GT(g.abs().max().item<double>(), 0);
}

// ---- hard constraints -----------------------------------------------------------------------

TEST(AllenCahnHardConstraints, InitialConditionIsExactAndValuesArePeriodic) {
  AllenCahnProblem problem(tiny_options(Constraints::kHard), small_reference());
  const torch::Tensor x = torch::linspace(-1, 1, 41, kF64);
  const torch::Tensor u0 = problem.predict(torch::stack({x, torch::zeros_like(x)}, 1));
  EXPECT_LT((u0 - x * x * torch::cos(kPi * x)).abs().max().item<double>(), 1e-15);
  // The network part is not zero: it really is the t * N term that vanishes at t = 0.
  const torch::Tensor u1 = problem.predict(torch::stack({x, torch::ones_like(x)}, 1));
  EXPECT_GT((u1 - x * x * torch::cos(kPi * x)).abs().max().item<double>(), 1e-3);

  const torch::Tensor t = torch::linspace(0, 1, 23, kF64);
  const torch::Tensor left = problem.predict(torch::stack({-torch::ones_like(t), t}, 1));
  const torch::Tensor right = problem.predict(torch::stack({torch::ones_like(t), t}, 1));
  EXPECT_LT((left - right).abs().max().item<double>(), 1e-14);
}

TEST(AllenCahnSoftConstraints, LossAddsWeightedInitialAndPeriodicTerms) {
  // Grid points, so the initial points x_i and boundary times t_j are known: cell centres.
  AllenCahnOptions o = tiny_options(Constraints::kSoft);
  o.sampling = SamplingMethod::kGrid;
  o.ic_weight = 3;
  o.bc_weight = 2;
  AllenCahnProblem problem(o, small_reference());
  auto u = [&](const torch::Tensor& xt) { return problem.predict(xt); };

  const torch::Tensor r = allen_cahn_residual(u, problem.residual_points(), 1e-4, 5.0);
  const torch::Tensor x0 = -1 + (torch::arange(37, kF64) + 0.5) * 2 / 37;
  const torch::Tensor u0 = u(torch::stack({x0, torch::zeros_like(x0)}, 1));
  const double initial = (u0 - x0 * x0 * torch::cos(kPi * x0)).square().mean().item<double>();
  const torch::Tensor t = (torch::arange(29, kF64) + 0.5) / 29;
  auto side = [&](double x) {
    const torch::Tensor xt = torch::stack({torch::full_like(t, x), t}, 1).requires_grad_(true);
    const torch::Tensor value = u(xt);
    const torch::Tensor u_x = torch::autograd::grad({value}, {xt}, {torch::ones_like(value)})[0].select(1, 0);
    return std::make_pair(value.detach(), u_x);
  };
  const auto [left, left_x] = side(-1.0);
  const auto [right, right_x] = side(1.0);
  const double periodic = (left - right).square().mean().item<double>() +
                          (left_x - right_x).square().mean().item<double>();
  EXPECT_GT(initial, 0);
  EXPECT_GT(periodic, 0);
  const double expected = r.square().mean().item<double>() + 3 * initial + 2 * periodic;
  EXPECT_NEAR(problem.loss({}).item<double>(), expected, 1e-13 * expected);
}

// ---- sampling -------------------------------------------------------------------------------

std::vector<std::tuple<double, double>> rows(const torch::Tensor& points) {
  std::vector<std::tuple<double, double>> out;
  auto a = points.accessor<double, 2>();
  for (int64_t i = 0; i < points.size(0); ++i) out.emplace_back(a[i][0], a[i][1]);
  return out;
}

TEST(PinnSampling, StrongScalingShardsPartitionTheSerialSet) {
  const Box box{{-1.0, 0.0}, {1.0, 1.0}};
  for (SamplingMethod method :
       {SamplingMethod::kUniform, SamplingMethod::kLatinHypercube, SamplingMethod::kGrid}) {
    SamplingOptions o{method, 1000, Scaling::kStrong, 5, {0, 1}};
    const ShardPoints serial = sample_points(box, o);
    ASSERT_EQ(serial.points.size(0), sampled_count(method, 1000, 2));
    std::vector<torch::Tensor> parts;
    for (int i = 0; i < 3; ++i) {
      o.shard = {i, 3};
      const ShardPoints part = sample_points(box, o);
      EXPECT_EQ(part.global_count, serial.global_count);
      parts.push_back(part.points);
    }
    EXPECT_TRUE(torch::equal(torch::cat(parts), serial.points)) << to_string(method);
    // Balanced: sizes differ by at most one.
    EXPECT_LE(std::abs(parts[0].size(0) - parts[2].size(0)), 1);
  }
}

TEST(PinnSampling, WeakScalingGivesEveryShardItsOwnPoints) {
  const Box box{{-1.0, 0.0}, {1.0, 1.0}};
  for (SamplingMethod method :
       {SamplingMethod::kUniform, SamplingMethod::kLatinHypercube, SamplingMethod::kGrid}) {
    SamplingOptions o{method, 400, Scaling::kWeak, 5, {0, 1}};
    const torch::Tensor serial = sample_points(box, o).points;
    std::set<std::tuple<double, double>> all;
    for (int i = 0; i < 3; ++i) {
      o.shard = {i, 3};
      const ShardPoints part = sample_points(box, o);
      EXPECT_EQ(part.points.size(0), 400);
      EXPECT_EQ(part.global_count, 1200);
      if (i == 0 && method != SamplingMethod::kGrid) {
        EXPECT_TRUE(torch::equal(part.points, serial));
      }
      for (const auto& row : rows(part.points)) all.insert(row);
    }
    EXPECT_EQ(all.size(), 1200u) << to_string(method) << ": shards repeat points";
  }
}

TEST(PinnSampling, PointsLieInTheBoxAndDependOnTheSeed) {
  const Box box{{-1.0, 0.0}, {1.0, 1.0}};
  SamplingOptions o{SamplingMethod::kUniform, 500, Scaling::kStrong, 1, {0, 1}};
  const torch::Tensor a = sample_points(box, o).points;
  EXPECT_TRUE(torch::equal(a, sample_points(box, o).points));
  o.seed = 2;
  EXPECT_FALSE(torch::equal(a, sample_points(box, o).points));
  EXPECT_GE(a.select(1, 0).min().item<double>(), -1.0);
  EXPECT_LE(a.select(1, 0).max().item<double>(), 1.0);
  EXPECT_GE(a.select(1, 1).min().item<double>(), 0.0);
  EXPECT_LE(a.select(1, 1).max().item<double>(), 1.0);
}

TEST(PinnSampling, LatinHypercubeHasOnePointPerStratumInEveryDimension) {
  const Box box{{-1.0, 0.0}, {1.0, 1.0}};
  const int64_t n = 97;
  const torch::Tensor p =
      sample_points(box, {SamplingMethod::kLatinHypercube, n, Scaling::kStrong, 3, {0, 1}}).points;
  const torch::Tensor x_strata = ((p.select(1, 0) + 1) / 2 * n).floor().to(torch::kLong);
  const torch::Tensor t_strata = (p.select(1, 1) * n).floor().to(torch::kLong);
  EXPECT_TRUE(torch::equal(std::get<0>(x_strata.sort()), torch::arange(n)));
  EXPECT_TRUE(torch::equal(std::get<0>(t_strata.sort()), torch::arange(n)));
}

TEST(PinnSampling, GridIsTheCellCentredLattice) {
  EXPECT_EQ(sampled_count(SamplingMethod::kGrid, 10000, 2), 10000);
  EXPECT_EQ(sampled_count(SamplingMethod::kGrid, 2000, 2), 45 * 45);
  EXPECT_EQ(sampled_count(SamplingMethod::kGrid, 256, 1), 256);
  const torch::Tensor p =
      sample_points({{-1.0, 0.0}, {1.0, 1.0}}, {SamplingMethod::kGrid, 16, Scaling::kStrong, 0, {0, 1}})
          .points;
  ASSERT_EQ(p.size(0), 16);
  // 4 x 4 cells of size 0.5 x 0.25; the first axis varies slowest.
  EXPECT_DOUBLE_EQ(p[0][0].item<double>(), -0.75);
  EXPECT_DOUBLE_EQ(p[0][1].item<double>(), 0.125);
  EXPECT_DOUBLE_EQ(p[1][1].item<double>(), 0.375);
  EXPECT_DOUBLE_EQ(p[4][0].item<double>(), -0.25);
  EXPECT_DOUBLE_EQ(p[15][0].item<double>(), 0.75);
  EXPECT_DOUBLE_EQ(p[15][1].item<double>(), 0.875);
}

TEST(PinnSampling, InvalidInputsThrow) {
  const Box box{{0.0}, {1.0}};
  EXPECT_THROW(sample_points(box, {SamplingMethod::kUniform, 0, Scaling::kStrong, 0, {0, 1}}),
               InvalidArgument);
  EXPECT_THROW(sample_points(box, {SamplingMethod::kUniform, 10, Scaling::kStrong, 0, {2, 2}}),
               InvalidArgument);
  EXPECT_THROW(sample_points({{1.0}, {1.0}}, {}), InvalidArgument);
  EXPECT_THROW(parse_sampling_method("sobol"), InvalidArgument);
  EXPECT_THROW(parse_scaling("medium"), InvalidArgument);
  EXPECT_EQ(parse_sampling_method("lhs"), SamplingMethod::kLatinHypercube);
  EXPECT_EQ(parse_scaling("weak"), Scaling::kWeak);
}

// ---- shards ---------------------------------------------------------------------------------

TEST(AllenCahnShards, StrongScalingLossSharesSumToTheSerialLoss) {
  for (Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    AllenCahnOptions o = tiny_options(constraints);
    AllenCahnProblem serial(o, small_reference());
    LocalObjective serial_objective(serial.parameters(), [&] { return serial.loss({}); });
    const torch::Tensor x = serial.parameters().values().clone();
    torch::Tensor serial_gradient = torch::zeros_like(x);
    const double serial_loss = serial_objective.evaluate(x, &serial_gradient);

    double loss_sum = 0;
    torch::Tensor gradient_sum = torch::zeros_like(x);
    std::vector<torch::Tensor> points;
    for (int i = 0; i < 3; ++i) {
      o.shard = {i, 3};
      AllenCahnProblem shard(o, small_reference());
      EXPECT_EQ(shard.global_num_samples(), serial.num_samples());
      points.push_back(shard.residual_points().detach());
      LocalObjective objective(shard.parameters(), [&] { return shard.loss({}); });
      torch::Tensor g = torch::zeros_like(x);
      loss_sum += objective.evaluate(x, &g);
      gradient_sum += g;
    }
    EXPECT_TRUE(torch::equal(torch::cat(points), serial.residual_points().detach()));
    EXPECT_NEAR(loss_sum, serial_loss, 1e-12 * serial_loss) << to_string(constraints);
    EXPECT_LT((gradient_sum - serial_gradient).abs().max().item<double>(),
              1e-12 * serial_gradient.abs().max().item<double>())
        << to_string(constraints);
  }
}

// The parts a parameter-subdomain group evaluates of the global stage add up to the loss and
// its gradient, for every derivative path, soft constraints and causal weights; a fresh
// problem whose first evaluation is a part takes its causal weights from all points.
TEST(AllenCahnShards, PartLossesAddUpToTheLoss) {
  struct Case {
    const char* name;
    Constraints constraints;
    Derivatives derivatives;
    double causal_epsilon;
  };
  for (const Case& c : {Case{"hard fused", Constraints::kHard, Derivatives::kFused, 0.0},
                        Case{"hard taylor", Constraints::kHard, Derivatives::kTaylor, 0.0},
                        Case{"soft autograd", Constraints::kSoft, Derivatives::kAutograd, 0.0},
                        Case{"hard fused causal", Constraints::kHard, Derivatives::kFused, 2.0},
                        Case{"soft taylor causal", Constraints::kSoft, Derivatives::kTaylor, 2.0}}) {
    SCOPED_TRACE(c.name);
    AllenCahnOptions o = tiny_options(c.constraints);
    o.derivatives = c.derivatives;
    o.causal_epsilon = c.causal_epsilon;
    AllenCahnProblem whole(o, small_reference());
    AllenCahnProblem parts(o, small_reference());
    ASSERT_TRUE(parts.splits_points());
    const torch::Tensor x = whole.parameters().values().clone();
    torch::Tensor expected = torch::zeros_like(x);
    LocalObjective whole_objective(whole.parameters(), [&] { return whole.loss({}); });
    const double expected_loss = whole_objective.evaluate(x, &expected);
    double loss = 0;
    torch::Tensor gradient = torch::zeros_like(x);
    const int count = 3;
    for (int part = 0; part < count; ++part) {
      LocalObjective objective(parts.parameters(), [&] { return parts.part_loss(part, count); });
      torch::Tensor g = torch::zeros_like(x);
      loss += objective.evaluate(x, &g);
      gradient += g;
    }
    EXPECT_NEAR(loss, expected_loss, 1e-12 * expected_loss);
    EXPECT_LT((gradient - expected).abs().max().item<double>(),
              1e-12 * expected.abs().max().item<double>());
  }
  AllenCahnProblem problem(tiny_options(), small_reference());
  EXPECT_THROW(problem.part_loss(3, 3), InvalidArgument);
  // More parts than points: the empty parts add nothing.
  EXPECT_EQ(problem.part_loss(500, 1000).item<double>(), 0.0);
}

// --blocks (issue 21 item 5): a shard holds the rows of its blocks of the serial point set,
// the block losses add up to its loss, the soft-constraint terms are whole in block 0.
TEST(AllenCahnBlocks, ShardsHoldTheirBlocksAndBlockLossesAddUp) {
  for (Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    SCOPED_TRACE(to_string(constraints));
    AllenCahnOptions o = tiny_options(constraints);
    const AllenCahnProblem serial(o, small_reference());
    o.blocks = 5;
    const auto block_rows = [&](int64_t b) { return balanced_share(o.nf, Shard{static_cast<int>(b), 5}); };
    for (int shard : {0, 1}) {
      o.shard = {shard, 2};  // shard 0 holds blocks 0..2, shard 1 blocks 3..4
      AllenCahnProblem problem(o, small_reference());
      const Problem::Blocks blocks = problem.blocks();
      EXPECT_EQ(blocks.first, shard == 0 ? 0 : 3);
      EXPECT_EQ(blocks.local, shard == 0 ? 3 : 2);
      EXPECT_EQ(blocks.total, 5);
      const int64_t begin = block_rows(blocks.first).begin, end = block_rows(blocks.first + blocks.local - 1).end;
      EXPECT_TRUE(torch::equal(problem.residual_points(),
                               serial.residual_points().narrow(0, begin, end - begin)));
      EXPECT_EQ(problem.global_num_samples(), o.nf);
      const torch::Tensor x = problem.parameters().values().clone();
      LocalObjective whole(problem.parameters(), [&] { return problem.loss({}); });
      torch::Tensor expected = torch::zeros_like(x);
      const double expected_loss = whole.evaluate(x, &expected);
      double loss = 0;
      torch::Tensor gradient = torch::zeros_like(x);
      for (int64_t i = 0; i < blocks.local; ++i) {
        LocalObjective block(problem.parameters(), [&] { return problem.block_loss(i); });
        torch::Tensor g = torch::zeros_like(x);
        loss += block.evaluate(x, &g);
        gradient += g;
      }
      EXPECT_NEAR(loss, expected_loss, 1e-12 * expected_loss);
      EXPECT_LT((gradient - expected).abs().max().item<double>(), 1e-12 * expected.abs().max().item<double>());
      EXPECT_THROW(problem.block_loss(blocks.local), InvalidArgument);
    }
  }
  // The soft-constraint terms: the serial loss is the sum of both shards' losses.
  AllenCahnOptions o = tiny_options(Constraints::kSoft);
  AllenCahnProblem serial(o, small_reference());
  o.blocks = 5;
  double sum = 0;
  for (int shard : {0, 1}) {
    o.shard = {shard, 2};
    AllenCahnProblem problem(o, small_reference());
    torch::NoGradGuard no_grad;
    sum += problem.loss({}).item<double>();
  }
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(sum, serial.loss({}).item<double>(), 1e-12 * sum);
}

// With --blocks each block of a problem whose evaluation is not thread-invariant (Taylor mode,
// soft constraints) is evaluated on one thread: the same bits for any --threads.
TEST(AllenCahnBlocks, TrainingGivesTheSameBitsForAnyThreadCount) {
  const int threads = at::get_num_threads();
  std::vector<std::vector<double>> losses;
  for (int t : {1, 2, 3}) {
    at::set_num_threads(t);
    AllenCahnOptions o = tiny_options(Constraints::kSoft);
    o.nf = 3000;  // matrix products and sums large enough to be split over threads
    o.derivatives = Derivatives::kTaylor;
    o.blocks = 3;
    AllenCahnProblem problem(o, small_reference());
    EXPECT_FALSE(problem.blocks_are_thread_invariant());
    Lbfgs solver;
    TrainOptions train_options;
    train_options.epochs = 6;
    train_options.metric_every = 0;
    std::vector<double> run;
    Callbacks callbacks;
    callbacks.on_iteration = [&run](const IterationSummary& row) {
      run.push_back(row.loss);
      return true;
    };
    train(problem, solver, train_options, make_layout(std::make_shared<SelfComm>(), 0), callbacks);
    losses.push_back(run);
  }
  at::set_num_threads(threads);
  ASSERT_EQ(losses[0].size(), 6u);
  EXPECT_EQ(losses[1], losses[0]);
  EXPECT_EQ(losses[2], losses[0]);
  AllenCahnProblem fused(tiny_options(), small_reference());
  EXPECT_TRUE(fused.blocks_are_thread_invariant());
}

TEST(AllenCahnBlocks, InvalidCombinationsAreRefusedNamingTheField) {
  AllenCahnOptions o = tiny_options();
  o.blocks = -1;
  EXPECT_NE(o.validate().find("blocks must be >= 0"), std::string::npos);
  o.blocks = 4;
  o.scaling = Scaling::kWeak;
  EXPECT_NE(o.validate().find("blocks needs scaling strong"), std::string::npos);
  o.scaling = Scaling::kStrong;
  o.shard = {0, 5};
  EXPECT_NE(o.validate().find("smaller than the number of data-parallel ranks"), std::string::npos);
  o.shard = {};
  o.causal_epsilon = 1;
  EXPECT_NE(o.validate().find("causal_epsilon"), std::string::npos);
  o.causal_epsilon = 0;
  o.blocks = o.nf + 1;
  EXPECT_NE(o.validate().find("exceeds nf"), std::string::npos);
  o.blocks = 4;
  EXPECT_EQ(o.validate(), "");
}

// ---- the metric and the field output ------------------------------------------------------

TEST(AllenCahnMetric, RelativeL2OfReferenceIsZeroAndOfZeroIsOne) {
  const torch::Tensor ref = torch::tensor(small_reference().u, kF64);
  EXPECT_EQ(relative_l2_error(ref, ref), 0.0);
  EXPECT_DOUBLE_EQ(relative_l2_error(torch::zeros_like(ref), ref), 1.0);
  EXPECT_THROW(relative_l2_error(ref, ref.narrow(0, 0, 3)), InvalidArgument);

  // A soft-constrained network with zero parameters predicts u = 0 everywhere.
  AllenCahnProblem problem(tiny_options(Constraints::kSoft), small_reference());
  problem.parameters().values().zero_();
  const Metric m = problem.evaluate();
  EXPECT_EQ(m.name, "rel_l2");
  EXPECT_FALSE(m.higher_is_better);
  EXPECT_NEAR(m.value, 1.0, 1e-15);
}

TEST(AllenCahnMetric, MetricMatchesThePredictionOnThePublishedGrid) {
  AllenCahnOptions o = tiny_options();
  AllenCahnProblem problem(o);  // computes the 512 x 201 reference
  ASSERT_EQ(problem.reference().nx(), 512);
  ASSERT_EQ(problem.reference().nt(), 201);
  const auto& ref = problem.reference();
  std::vector<double> xs, ts;
  for (int j = 0; j < ref.nt(); ++j)
    for (int i = 0; i < ref.nx(); ++i) {
      xs.push_back(ref.x[i]);
      ts.push_back(ref.t[j]);
    }
  torch::NoGradGuard no_grad;
  const torch::Tensor u = problem.predict(torch::stack({torch::tensor(xs, kF64), torch::tensor(ts, kF64)}, 1));
  EXPECT_NEAR(problem.evaluate().value, relative_l2_error(u, torch::tensor(ref.u, kF64)), 1e-14);
}

TEST(AllenCahnMetric, ReferenceCanBeReadFromAMatFile) {
  const std::string path = temp_path("reference.mat");
  reference::write_reference_mat(path, small_reference());
  AllenCahnOptions o = tiny_options();
  o.reference_path = path;
  AllenCahnProblem from_file(o);
  AllenCahnProblem given(tiny_options(), small_reference());
  EXPECT_EQ(from_file.reference().nx(), 64);
  EXPECT_DOUBLE_EQ(from_file.evaluate().value, given.evaluate().value);
  std::remove(path.c_str());

  o.reference_path = temp_path("missing.mat");
  EXPECT_THROW(AllenCahnProblem{o}, IoError);
}

TEST(AllenCahnMetric, FieldCsvHoldsTheGridReferencePredictionAndError) {
  AllenCahnProblem problem(tiny_options(), small_reference());
  const std::string path = temp_path("field.csv");
  problem.write_field_csv(path);
  std::ifstream in(path);
  ASSERT_TRUE(in.good());
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "x,t,u_ref,u_pred,error");
  std::vector<std::vector<double>> table;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) row.push_back(std::stod(cell));
    ASSERT_EQ(row.size(), 5u) << line;
    table.push_back(row);
  }
  const auto& ref = small_reference();
  ASSERT_EQ(table.size(), ref.u.size());
  const size_t k = 3 + 64 * 7;  // x_3, t_7
  EXPECT_DOUBLE_EQ(table[k][0], ref.x[3]);
  EXPECT_NEAR(table[k][1], ref.t[7], 1e-12);
  EXPECT_NEAR(table[k][2], ref.value(3, 7), 1e-11);
  EXPECT_NEAR(table[k][4], std::abs(table[k][3] - table[k][2]), 1e-3 * table[k][4] + 1e-8);
  // Rows [0, nx) are t = 0, where the hard constraint is exact.
  for (int i = 0; i < 64; ++i) EXPECT_LT(table[i][4], 1e-8);
  std::ifstream partial(path + ".tmp");
  EXPECT_FALSE(partial.good());
  std::remove(path.c_str());
  EXPECT_THROW(problem.write_field_csv("/nonexistent-dir/field.csv"), IoError);
}

// ---- resampling and causal weighting --------------------------------------------------------

TEST(AllenCahnResampling, NewPointsAtEveryRoundAndOnResume) {
  AllenCahnOptions o = tiny_options();
  o.resample_every = 3;
  AllenCahnProblem problem(o, small_reference());
  const torch::Tensor round0 = problem.residual_points().detach().clone();
  for (int64_t epoch = 0; epoch < 3; ++epoch) EXPECT_FALSE(problem.on_epoch_begin(epoch));
  EXPECT_TRUE(problem.on_epoch_begin(3));
  EXPECT_FALSE(torch::equal(problem.residual_points().detach(), round0));
  EXPECT_FALSE(problem.on_epoch_begin(4));
  EXPECT_FALSE(problem.on_epoch_begin(5));
  EXPECT_TRUE(problem.on_epoch_begin(6));
  const torch::Tensor round2 = problem.residual_points().detach().clone();

  AllenCahnProblem resumed(o, small_reference());  // resuming at epoch 7 = round 2
  EXPECT_TRUE(resumed.on_epoch_begin(7));
  EXPECT_TRUE(torch::equal(resumed.residual_points().detach(), round2));

  o.resample_every = 0;
  AllenCahnProblem fixed(o, small_reference());
  EXPECT_FALSE(fixed.on_epoch_begin(3));
  EXPECT_TRUE(torch::equal(fixed.residual_points().detach(), round0));
}

TEST(AllenCahnTimeMarching, ResidualPointsCoverAGrowingTimeInterval) {
  AllenCahnOptions o = tiny_options();
  o.time_marching_stages = 4;
  o.stage_epochs = 2;
  AllenCahnProblem problem(o, small_reference());
  auto t_max = [&] { return problem.residual_points().detach().select(1, 1).max().item<double>(); };
  EXPECT_LE(t_max(), 0.25);
  EXPECT_FALSE(problem.on_epoch_begin(0));
  EXPECT_FALSE(problem.on_epoch_begin(1));
  EXPECT_TRUE(problem.on_epoch_begin(2));  // stage 2: [0, 0.5]
  EXPECT_GT(t_max(), 0.25);
  EXPECT_LE(t_max(), 0.5);
  EXPECT_EQ(problem.residual_points().size(0), o.nf);
  EXPECT_TRUE(problem.on_epoch_begin(6));  // stage 4: the whole interval, and it stays
  EXPECT_GT(t_max(), 0.75);
  const torch::Tensor last = problem.residual_points().detach().clone();
  EXPECT_FALSE(problem.on_epoch_begin(7));
  EXPECT_FALSE(problem.on_epoch_begin(50));
  AllenCahnProblem resumed(o, small_reference());  // resuming in the last stage
  EXPECT_TRUE(resumed.on_epoch_begin(9));
  EXPECT_TRUE(torch::equal(resumed.residual_points().detach(), last));
}

TEST(AllenCahnRad, AdaptedPointsConcentrateWhereTheResidualIsLarge) {
  AllenCahnOptions o = tiny_options();
  o.rad_every = 2;
  o.rad_k = 2;
  o.rad_c = 0;
  AllenCahnProblem problem(o, small_reference());
  auto mean_abs_residual = [&] {
    torch::NoGradGuard no_grad;
    return problem.residual(problem.residual_points().detach()).abs().mean().item<double>();
  };
  const double uniform = mean_abs_residual();
  EXPECT_FALSE(problem.on_epoch_begin(0));
  EXPECT_FALSE(problem.on_epoch_begin(1));
  EXPECT_TRUE(problem.on_epoch_begin(2));
  EXPECT_EQ(problem.residual_points().size(0), o.nf);
  EXPECT_GT(mean_abs_residual(), 1.5 * uniform);
  EXPECT_FALSE(problem.on_epoch_begin(3));

  // Strong scaling: the shards' adapted points are the serial draw, split.
  std::vector<torch::Tensor> parts;
  for (int shard = 0; shard < 2; ++shard) {
    AllenCahnOptions sharded = o;
    sharded.shard = {shard, 2};
    AllenCahnProblem part(sharded, small_reference());
    EXPECT_TRUE(part.on_epoch_begin(2));
    parts.push_back(part.residual_points().detach());
  }
  EXPECT_TRUE(torch::equal(torch::cat(parts), problem.residual_points().detach()));
}

// Urbán et al.'s recipe: the dense quasi-Newton keeps H when RAD redraws the points. The driver
// never resets the solver on a change of data; a reset would zero the counters and restart from I.
TEST(AllenCahnRad, DenseQuasiNewtonKeepsItsInverseHessianAcrossRedraws) {
  AllenCahnOptions o = tiny_options();
  o.model = PinnModel::kFullyConnected;
  o.rad_every = 3;
  AllenCahnProblem problem(o, small_reference());
  const torch::Tensor first_points = problem.residual_points().detach().clone();
  Bfgs solver;
  TrainOptions t;
  t.epochs = 10;  // redraws at epochs 3, 6 and 9
  t.metric_every = 0;
  int64_t identity_after_start = 0;
  Callbacks callbacks;
  callbacks.on_iteration = [&](const IterationSummary& row) {
    if (row.iteration > 1 && torch::equal(solver.inverse_hessian(), torch::eye(problem.parameters().size(), kF64)))
      ++identity_after_start;
    return true;
  };
  const Summary summary = train(problem, solver, t, make_layout(std::make_shared<SelfComm>(), 0), callbacks);
  EXPECT_TRUE(summary.succeeded()) << summary.message;
  EXPECT_FALSE(torch::equal(problem.residual_points().detach(), first_points));  // points redrawn
  EXPECT_EQ(identity_after_start, 0);
  EXPECT_EQ(solver.restarts(), 0);
  EXPECT_EQ(solver.scaled_updates() + solver.skipped_updates(), summary.iterations);
}

/// Causal loss by hand: weights from the squared residuals `at_weights`, applied to `r2`.
double causal_loss_by_hand(const torch::Tensor& at_weights, const torch::Tensor& r2,
                           const torch::Tensor& bin, int bins, double epsilon) {
  double loss = 0, earlier = 0;
  for (int b = 0; b < bins; ++b) {
    const torch::Tensor mask = bin == b;
    EXPECT_GT(mask.sum().item<int64_t>(), 0);
    loss += std::exp(-epsilon * earlier) * r2.masked_select(mask).sum().item<double>();
    earlier += at_weights.masked_select(mask).mean().item<double>();
  }
  return loss / r2.numel();
}

TEST(AllenCahnCausal, WeightsBinsByTheResidualOfEarlierTimesFrozenPerEpoch) {
  AllenCahnOptions o = tiny_options();
  AllenCahnProblem plain(o, small_reference());
  o.causal_epsilon = 2.0;
  o.causal_bins = 4;
  AllenCahnProblem causal(o, small_reference());

  const torch::Tensor points = causal.residual_points();
  const torch::Tensor bin = (points.detach().select(1, 1) * 4).floor().clamp(0, 3).to(torch::kLong);
  auto squared_residual = [&] {
    auto u = [&](const torch::Tensor& xt) { return causal.predict(xt); };
    return allen_cahn_residual(u, points, 1e-4, 5.0).square().detach();
  };
  const torch::Tensor r2_start = squared_residual();
  const double loss = causal.loss({}).item<double>();
  const double expected = causal_loss_by_hand(r2_start, r2_start, bin, 4, 2.0);
  EXPECT_NEAR(loss, expected, 1e-13 * expected);
  EXPECT_LT(loss, plain.loss({}).item<double>());

  // Within the epoch the weights stay those of its first evaluation ...
  {
    torch::NoGradGuard no_grad;
    causal.parameters().values().mul_(1.1);
  }
  const torch::Tensor r2_moved = squared_residual();
  const double frozen = causal_loss_by_hand(r2_start, r2_moved, bin, 4, 2.0);
  EXPECT_NEAR(causal.loss({}).item<double>(), frozen, 1e-13 * frozen);
  // ... and the next epoch reports a changed objective and renews them.
  EXPECT_TRUE(causal.on_epoch_begin(1));
  const double renewed = causal_loss_by_hand(r2_moved, r2_moved, bin, 4, 2.0);
  EXPECT_GT(std::abs(renewed - frozen), 1e-6 * frozen);
  EXPECT_NEAR(causal.loss({}).item<double>(), renewed, 1e-13 * renewed);
  EXPECT_FALSE(plain.on_epoch_begin(1));
}

// ---- options --------------------------------------------------------------------------------

TEST(AllenCahnOptions, DefaultsAreValidAndInvalidOptionsNameTheirField) {
  EXPECT_EQ(AllenCahnOptions{}.validate(), "");
  const std::vector<std::pair<std::function<void(AllenCahnOptions&)>, std::string>> cases = {
      {[](AllenCahnOptions& o) { o.nf = 0; }, "nf "},
      {[](AllenCahnOptions& o) { o.n0 = -1; }, "n0 "},
      {[](AllenCahnOptions& o) { o.nb = 0; }, "nb "},
      {[](AllenCahnOptions& o) { o.diffusion = -1; }, "diffusion "},
      {[](AllenCahnOptions& o) { o.ic_weight = -1; }, "ic_weight "},
      {[](AllenCahnOptions& o) { o.bc_weight = NAN; }, "bc_weight "},
      {[](AllenCahnOptions& o) { o.resample_every = -2; }, "resample_every "},
      {[](AllenCahnOptions& o) {
         o.resample_every = 5;
         o.sampling = SamplingMethod::kGrid;
       },
       "resample_every "},
      {[](AllenCahnOptions& o) { o.time_marching_stages = -1; }, "time_marching_stages"},
      {[](AllenCahnOptions& o) { o.stage_epochs = 0; }, "stage_epochs "},
      {[](AllenCahnOptions& o) { o.rad_every = -1; }, "rad_every "},
      {[](AllenCahnOptions& o) {
         o.rad_every = 2;
         o.resample_every = 2;
       },
       "choose one"},
      {[](AllenCahnOptions& o) { o.rad_candidates = 10; }, "rad_candidates "},
      {[](AllenCahnOptions& o) { o.rad_k = -1; }, "rad_k "},
      {[](AllenCahnOptions& o) { o.rad_c = NAN; }, "rad_c "},
      {[](AllenCahnOptions& o) { o.causal_epsilon = -1; }, "causal_epsilon "},
      {[](AllenCahnOptions& o) { o.causal_bins = 0; }, "causal_bins "},
      {[](AllenCahnOptions& o) { o.depth = 0; }, "depth "},
      {[](AllenCahnOptions& o) { o.width = 0; }, "width "},
      {[](AllenCahnOptions& o) { o.dtype = torch::kInt32; }, "dtype"},
  };
  for (const auto& [mutate, option] : cases) {
    AllenCahnOptions o;
    mutate(o);
    const std::string message = o.validate();
    EXPECT_NE(message.find(option), std::string::npos) << option << ": '" << message << "'";
    EXPECT_THROW(AllenCahnProblem(o, small_reference()), InvalidArgument) << option;
  }
  EXPECT_THROW(parse_constraints("medium"), InvalidArgument);
  EXPECT_THROW(parse_pinn_model("transformer"), InvalidArgument);
  EXPECT_THROW(parse_activation("swish"), InvalidArgument);
  EXPECT_EQ(parse_constraints("soft"), Constraints::kSoft);
}

TEST(AllenCahnOptions, FullyConnectedModelAndFloat32) {
  AllenCahnOptions o = tiny_options();
  o.model = PinnModel::kFullyConnected;
  o.dtype = torch::kFloat32;
  AllenCahnProblem problem(o, small_reference());
  EXPECT_EQ(problem.parameters().layers().size(), 4u);  // 3 hidden + output
  EXPECT_EQ(problem.parameters().values().scalar_type(), torch::kFloat32);
  EXPECT_EQ(problem.loss({}).scalar_type(), torch::kFloat32);
  EXPECT_THROW(problem.loss(torch::arange(3)), InvalidArgument);

  o.model = PinnModel::kResNet;
  AllenCahnProblem resnet(o, small_reference());
  EXPECT_EQ(resnet.parameters().layers().size(), 3u);  // the units
}

// ---- training -------------------------------------------------------------------------------

TEST(AllenCahnTraining, LbfgsLowersTheLoss) {
  AllenCahnOptions o = tiny_options();
  o.nf = 500;
  AllenCahnProblem problem(o, small_reference());
  const double initial = problem.loss({}).item<double>();
  Lbfgs solver;
  TrainOptions train_options;
  train_options.epochs = 20;
  train_options.metric_every = 5;
  const Summary summary =
      train(problem, solver, train_options, make_layout(std::make_shared<SelfComm>()));
  EXPECT_EQ(summary.iterations, 20);
  EXPECT_EQ(summary.metric_name, "rel_l2");
  EXPECT_TRUE(std::isfinite(summary.metric));
  EXPECT_LT(summary.final_loss, 0.5 * initial);
  EXPECT_NEAR(problem.loss({}).item<double>(), summary.final_loss, 1e-12 * initial);
}

TEST(AllenCahnTraining, AdamLowersTheLossInFloat32) {
  AllenCahnOptions o = tiny_options(Constraints::kSoft);
  o.nf = 500;
  o.dtype = torch::kFloat32;
  AllenCahnProblem problem(o, small_reference());
  const double initial = problem.loss({}).item<double>();
  AdamOptions adam;
  adam.learning_rate = 1e-2;
  Adam solver(adam);
  TrainOptions train_options;
  train_options.epochs = 50;
  train_options.metric_every = 0;
  const Summary summary =
      train(problem, solver, train_options, make_layout(std::make_shared<SelfComm>()));
  EXPECT_LT(summary.final_loss, 0.5 * initial);
}

}  // namespace
}  // namespace ddtrain
