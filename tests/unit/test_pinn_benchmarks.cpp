// The Burgers and Klein–Gordon PINN benchmarks: the Cole–Hopf reference against an independent
// finite-difference solve and the benchmark's known values, the Klein–Gordon manufactured
// solution, hard and soft constraints, Taylor mode against autograd, shard shares, option
// validation, the CLI, and short training runs that lower the rel. L2 error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "cli_helpers.hpp"
#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/problems/pinn_benchmarks.hpp"
#include "ddtrain/reference/burgers_reference.hpp"
#include "ddtrain/solvers/bfgs.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/train.hpp"

namespace ddtrain {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kNu = 0.01 / kPi;
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);
namespace fs = std::filesystem;

/// Burgers on the periodic [-1, 1) (u(x, 0) = -sin(pi x) is odd and 2-periodic, so the solution
/// stays odd about x = 0 and x = +-1 and vanishes there: the Dirichlet problem), fourth-order
/// central differences in conservative form, classical RK4. u on the grid x_i = -1 + 2 i / n at
/// each of `times` (ascending).
std::vector<std::vector<double>> finite_difference_burgers(int n, const std::vector<double>& times) {
  const double h = 2.0 / n;
  std::vector<double> u(n), k(n), stage(n), sum(n);
  for (int i = 0; i < n; ++i) u[i] = -std::sin(kPi * (-1.0 + h * i));
  auto rhs = [&](const std::vector<double>& v, std::vector<double>& out) {
    for (int i = 0; i < n; ++i) {
      const int m2 = (i + n - 2) % n, m1 = (i + n - 1) % n, p1 = (i + 1) % n, p2 = (i + 2) % n;
      const double flux = (-0.5 * v[p2] * v[p2] + 4 * v[p1] * v[p1] - 4 * v[m1] * v[m1] + 0.5 * v[m2] * v[m2]) / (12 * h);
      const double laplacian = (-v[p2] + 16 * v[p1] - 30 * v[i] + 16 * v[m1] - v[m2]) / (12 * h * h);
      out[i] = -flux + kNu * laplacian;
    }
  };
  std::vector<std::vector<double>> out;
  double t = 0;
  const double dt_max = 0.5 * h * h / kNu;  // inside RK4's stability region for the diffusion
  for (const double target : times) {
    const int steps = static_cast<int>(std::ceil((target - t) / dt_max));
    const double dt = (target - t) / steps;
    for (int s = 0; s < steps; ++s) {
      rhs(u, k);
      for (int i = 0; i < n; ++i) sum[i] = k[i], stage[i] = u[i] + 0.5 * dt * k[i];
      rhs(stage, k);
      for (int i = 0; i < n; ++i) sum[i] += 2 * k[i], stage[i] = u[i] + 0.5 * dt * k[i];
      rhs(stage, k);
      for (int i = 0; i < n; ++i) sum[i] += 2 * k[i], stage[i] = u[i] + dt * k[i];
      rhs(stage, k);
      for (int i = 0; i < n; ++i) u[i] += dt / 6 * (sum[i] + k[i]);
    }
    t = target;
    out.push_back(u);
  }
  return out;
}

// ---- the Burgers reference ------------------------------------------------------------------

TEST(BurgersReference, GaussHermiteRuleIntegratesPolynomialsExactly) {
  for (const int n : {20, 200, 600}) {
    SCOPED_TRACE(n);
    const reference::GaussHermiteRule rule = reference::gauss_hermite(n);
    double m0 = 0, m2 = 0, m4 = 0, m1 = 0;
    for (int i = 0; i < n; ++i) {
      const double w = std::exp(rule.log_weights[i]), z = rule.nodes[i];
      m0 += w, m1 += w * z, m2 += w * z * z, m4 += w * z * z * z * z;
      if (i > 0) {
        EXPECT_LT(rule.nodes[i - 1], z);
      }
      EXPECT_EQ(rule.nodes[n - 1 - i], -z);
    }
    EXPECT_NEAR(m0, std::sqrt(kPi), 1e-13);
    EXPECT_NEAR(m1, 0.0, 1e-13);
    EXPECT_NEAR(m2, std::sqrt(kPi) / 2, 1e-13);
    EXPECT_NEAR(m4, 3 * std::sqrt(kPi) / 4, 1e-12);
  }
  EXPECT_THROW(reference::gauss_hermite(0), InvalidArgument);
  EXPECT_THROW(reference::gauss_hermite(601), InvalidArgument);
}

TEST(BurgersReference, AgreesWithAFourthOrderFiniteDifferenceSolve) {
  // Measured: max |difference| 5.4e-4 (at the front), rel. L2 2.9e-5 with n = 1024; the
  // difference falls 14x per halving of h (fourth order), so it is the finite differences'.
  const int n = 1024;
  const std::vector<double> times = {0.25, 0.5, 0.75, 1.0};
  const std::vector<std::vector<double>> fd = finite_difference_burgers(n, times);
  const reference::BurgersColeHopf u(kNu, 200);
  double largest = 0, squared = 0, norm = 0;
  for (size_t j = 0; j < times.size(); ++j)
    for (int i = 0; i < n; ++i) {
      const double exact = u(-1.0 + 2.0 * i / n, times[j]), error = fd[j][i] - exact;
      largest = std::max(largest, std::abs(error));
      squared += error * error;
      norm += exact * exact;
    }
  EXPECT_LT(largest, 1.5e-3);
  EXPECT_LT(std::sqrt(squared / norm), 1e-4);
}

TEST(BurgersReference, HasTheBenchmarksShapeAndLargestSlope) {
  reference::BurgersReferenceOptions o;
  o.nx = 65;
  o.nt = 21;
  const reference::ReferenceField field = reference::solve_burgers(o);
  ASSERT_EQ(field.u.size(), 65u * 21u);
  EXPECT_EQ(field.x.front(), -1.0);
  EXPECT_EQ(field.x.back(), 1.0);
  EXPECT_EQ(field.t.back(), 1.0);
  for (int j = 0; j < field.nt(); ++j)
    for (int i = 0; i < field.nx(); ++i) {
      const double value = field.value(i, j);
      EXPECT_LE(std::abs(value), 1.0);
      EXPECT_NEAR(value, -field.value(field.nx() - 1 - i, j), 1e-12);  // odd in x
      if (j == 0) {
        EXPECT_NEAR(value, -std::sin(kPi * field.x[i]), 1e-15);
      }
      if (i == 0 || i == field.nx() - 1 || i == field.nx() / 2) {
        EXPECT_NEAR(value, 0.0, 1e-12);
      }
    }
  // The front: at t = 1 u jumps from about +0.64 to -0.64 across x = 0 within 0.02.
  const reference::BurgersColeHopf u(kNu, 200);
  EXPECT_GT(u(-0.01, 1.0), 0.5);
  EXPECT_LT(u(0.01, 1.0), -0.5);
  // Basdevant et al. (1986): the largest |u_x| is 152.00516 at x = 0, t = 1.6037 / pi.
  const double t = 1.6037 / kPi, h = 1e-6;
  EXPECT_NEAR(-(u(h, t) - u(-h, t)) / (2 * h), 152.00516, 2e-3);
  // The quadrature has converged: 100 nodes give what 600 give.
  const reference::BurgersColeHopf fine(kNu, 600), coarse(kNu, 100);
  for (const double x : {-0.9, -0.3, -0.01, -0.001, 0.002, 0.5})
    for (const double time : {0.01, 0.3, 0.51, 1.0}) EXPECT_NEAR(coarse(x, time), fine(x, time), 1e-13);
}

TEST(BurgersReference, InvalidOptionsThrow) {
  reference::BurgersReferenceOptions o;
  EXPECT_EQ(o.validate(), "");
  o.nx = 1;
  EXPECT_THROW(reference::solve_burgers(o), InvalidArgument);
  o = {};
  o.viscosity = 0;
  EXPECT_NE(o.validate().find("viscosity must be"), std::string::npos);
  o = {};
  o.quadrature_nodes = 4;
  EXPECT_NE(o.validate().find("[8, 600]"), std::string::npos);
  EXPECT_THROW(reference::BurgersColeHopf(-1.0, 100), InvalidArgument);
}

// ---- the problems ---------------------------------------------------------------------------

template <typename Options>
Options tiny(Options o, Constraints constraints) {
  o.nf = 203;
  o.n0 = 37;
  o.nb = 29;
  o.depth = 2;
  o.width = 10;
  o.dtype = torch::kFloat64;
  o.constraints = constraints;
  o.seed = 5;
  o.reference_nx = 33;
  o.reference_nt = 11;
  return o;
}

BurgersOptions tiny_burgers(Constraints constraints) { return tiny(BurgersOptions{}, constraints); }
KleinGordonOptions tiny_klein_gordon(Constraints constraints) { return tiny(KleinGordonOptions{}, constraints); }

torch::Tensor random_points(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor r = torch::rand({n, 2}, kF64);
  return torch::stack({2 * r.select(1, 0) - 1, r.select(1, 1)}, 1);
}

TEST(BurgersProblem, HardConstraintsHoldTheInitialAndBoundaryValuesExactly) {
  BurgersProblem problem(tiny_burgers(Constraints::kHard));
  const torch::Tensor x = torch::linspace(-1, 1, 41, kF64);
  const torch::Tensor initial = problem.predict(torch::stack({x, torch::zeros_like(x)}, 1));
  EXPECT_LT((initial + torch::sin(kPi * x)).abs().max().item<double>(), 1e-15);
  const torch::Tensor t = torch::linspace(0, 1, 21, kF64);
  for (const double side : {-1.0, 1.0})
    EXPECT_LT(problem.predict(torch::stack({torch::full_like(t, side), t}, 1)).abs().max().item<double>(), 1e-15);
}

TEST(BurgersProblem, TaylorModeAndAutogradGiveTheSameResidualAndGradient) {
  for (const Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    SCOPED_TRACE(to_string(constraints));
    BurgersOptions o = tiny_burgers(constraints);
    BurgersProblem taylor(o);
    o.derivatives = Derivatives::kAutograd;
    BurgersProblem autograd(o);
    EXPECT_EQ(taylor.derivatives(), Derivatives::kTaylor);
    const torch::Tensor xt = random_points(50, 1);
    EXPECT_LT((taylor.residual(xt) - autograd.residual(xt)).abs().max().item<double>(), 1e-12);
    taylor.parameters().zero_gradients();
    autograd.parameters().zero_gradients();
    taylor.loss({}).backward();
    autograd.loss({}).backward();
    const torch::Tensor g = taylor.parameters().gradients().clone(), h = autograd.parameters().gradients().clone();
    EXPECT_LT((g - h).abs().max().item<double>(), 1e-12 * (1 + g.abs().max().item<double>()));
  }
}

TEST(BurgersProblem, SoftLossIsResidualPlusWeightedInitialAndBoundaryTerms) {
  BurgersOptions o = tiny_burgers(Constraints::kSoft);
  o.ic_weight = 0;
  o.bc_weight = 0;
  const double residual_only = BurgersProblem(o).loss({}).item<double>();
  o.ic_weight = 1;
  const double with_ic = BurgersProblem(o).loss({}).item<double>();
  o.ic_weight = 3;
  const double with_3ic = BurgersProblem(o).loss({}).item<double>();
  EXPECT_GT(with_ic, residual_only);
  EXPECT_NEAR(with_3ic - residual_only, 3 * (with_ic - residual_only), 1e-12);
  o.ic_weight = 0;
  o.bc_weight = 2;
  EXPECT_GT(BurgersProblem(o).loss({}).item<double>(), residual_only);
}

TEST(BurgersProblem, StrongScalingLossSharesSumToTheSerialLoss) {
  for (const Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    BurgersOptions o = tiny_burgers(constraints);
    const double serial = BurgersProblem(o).loss({}).item<double>();
    double sum = 0;
    int64_t points = 0;
    for (int shard = 0; shard < 3; ++shard) {
      o.shard = Shard{shard, 3};
      BurgersProblem part(o);
      sum += part.loss({}).item<double>();
      points += part.num_samples();
      EXPECT_EQ(part.global_num_samples(), 203);
    }
    EXPECT_EQ(points, 203);
    EXPECT_NEAR(sum, serial, 1e-12 * serial);
  }
}

// The parts a parameter-subdomain group evaluates of the global stage add up to the loss.
TEST(BurgersProblem, PartLossesAddUpToTheLoss) {
  for (const Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    SCOPED_TRACE(to_string(constraints));
    BurgersProblem problem(tiny_burgers(constraints));
    ASSERT_TRUE(problem.splits_points());
    const double whole = problem.loss({}).item<double>();
    double sum = 0;
    for (int part = 0; part < 4; ++part) sum += problem.part_loss(part, 4).item<double>();
    EXPECT_NEAR(sum, whole, 1e-12 * whole);
  }
  KleinGordonProblem klein_gordon(tiny_klein_gordon(Constraints::kSoft));
  const double whole = klein_gordon.loss({}).item<double>();
  EXPECT_NEAR(klein_gordon.part_loss(0, 2).item<double>() + klein_gordon.part_loss(1, 2).item<double>(),
              whole, 1e-12 * whole);
  EXPECT_THROW(klein_gordon.part_loss(-1, 2), InvalidArgument);
}

// --blocks: a shard holds the rows of its blocks of the serial set, the block losses add up to
// its loss and the shards' losses to the serial loss (soft-constraint terms whole in block 0).
TEST(BurgersProblem, BlocksHoldTheSerialRowsAndAddUp) {
  for (const Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    SCOPED_TRACE(to_string(constraints));
    KleinGordonOptions o = tiny_klein_gordon(constraints);
    KleinGordonProblem serial(o);
    torch::NoGradGuard no_grad;
    const double serial_loss = serial.loss({}).item<double>();
    o.blocks = 5;
    double shards = 0;
    for (int shard : {0, 1}) {
      o.shard = {shard, 2};
      KleinGordonProblem problem(o);
      const Problem::Blocks blocks = problem.blocks();
      EXPECT_EQ(blocks.first, shard == 0 ? 0 : 3);
      EXPECT_EQ(blocks.local, shard == 0 ? 3 : 2);
      const Range rows = shard_rows(o.nf, o.shard, blocks);
      EXPECT_TRUE(torch::equal(problem.residual_points(), serial.residual_points().narrow(0, rows.begin, rows.size())));
      const double loss = problem.loss({}).item<double>();
      double sum = 0;
      for (int64_t i = 0; i < blocks.local; ++i) sum += problem.block_loss(i).item<double>();
      EXPECT_NEAR(sum, loss, 1e-12 * loss);
      EXPECT_THROW(problem.block_loss(blocks.local), InvalidArgument);
      shards += loss;
    }
    EXPECT_NEAR(shards, serial_loss, 1e-12 * serial_loss);
  }
  BurgersOptions weak = tiny_burgers(Constraints::kHard);
  weak.blocks = 2;
  weak.scaling = Scaling::kWeak;
  EXPECT_NE(weak.validate().find("blocks needs scaling strong"), std::string::npos);
}

TEST(BurgersProblem, OptionsAreValidatedWithOneLineNamingTheField) {
  EXPECT_EQ(BurgersOptions{}.validate(), "");
  auto reason = [](auto change) {
    BurgersOptions o;
    change(o);
    return o.validate();
  };
  EXPECT_NE(reason([](BurgersOptions& o) { o.nf = 0; }).find("nf must be"), std::string::npos);
  EXPECT_NE(reason([](BurgersOptions& o) { o.viscosity = -1; }).find("viscosity must be"), std::string::npos);
  EXPECT_NE(reason([](BurgersOptions& o) { o.ic_weight = NAN; }).find("ic_weight must be"), std::string::npos);
  EXPECT_NE(reason([](BurgersOptions& o) { o.derivatives = Derivatives::kFused; }).find("derivatives fused"),
            std::string::npos);
  EXPECT_THROW(parse_pinn_model("cnn"), InvalidArgument);
  EXPECT_THROW(parse_activation("swish"), InvalidArgument);
  BurgersOptions bad;
  bad.width = 0;
  EXPECT_THROW(BurgersProblem{bad}, InvalidArgument);
}

TEST(BurgersProblem, MetricIsZeroForTheReferenceAndFieldCsvIsWritten) {
  BurgersProblem problem(tiny_burgers(Constraints::kHard));
  const Metric metric = problem.evaluate();
  EXPECT_EQ(metric.name, "rel_l2");
  EXPECT_GT(metric.value, 0.0);
  EXPECT_EQ(relative_l2_error(torch::tensor(problem.reference().u, kF64), torch::tensor(problem.reference().u, kF64)),
            0.0);
  const fs::path dir = test::scratch("burgers_field");
  problem.write_outputs(dir.string());
  const std::string csv = test::slurp(dir / "field.csv");
  EXPECT_EQ(csv.rfind("x,t,u_ref,u_pred,error\n", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 33 * 11);
}

// ---- Klein–Gordon ---------------------------------------------------------------------------

TEST(KleinGordon, ManufacturedSolutionSolvesTheEquationWithItsForcing) {
  const torch::Tensor xt = random_points(64, 2).requires_grad_(true);
  const torch::Tensor u = klein_gordon_solution(xt);
  auto d = [&](const torch::Tensor& f) { return torch::autograd::grad({f}, {xt}, {torch::ones_like(f)}, true, true)[0]; };
  const torch::Tensor du = d(u);
  SpaceTimeFields fields{u, du.select(1, 0), du.select(1, 1), d(du.select(1, 0)).select(1, 0),
                         d(du.select(1, 1)).select(1, 1)};
  EXPECT_LT(klein_gordon_residual(fields, xt).abs().max().item<double>(), 1e-11);
  // ... and a wrong function does not.
  fields.u = fields.u + 0.1;
  EXPECT_GT(klein_gordon_residual(fields, xt).abs().max().item<double>(), 1e-3);
  const reference::ReferenceField field = klein_gordon_reference(5, 3);
  EXPECT_DOUBLE_EQ(field.value(4, 2), 1.0 * std::cos(5 * kPi) + 1.0);  // x = 1, t = 1: -1 + 1
  EXPECT_DOUBLE_EQ(field.value(0, 0), -1.0);
}

TEST(KleinGordon, HardConstraintsMeetTheInitialAndBoundaryData) {
  KleinGordonProblem problem(tiny_klein_gordon(Constraints::kHard));
  const torch::Tensor x = torch::linspace(-1, 1, 41, kF64);
  const torch::Tensor at_zero = torch::stack({x, torch::zeros_like(x)}, 1);
  const SpaceTimeFields initial = problem.fields(at_zero, FieldsWanted{false, true, false, false});
  EXPECT_LT((initial.u - x).abs().max().item<double>(), 1e-15);
  EXPECT_LT(initial.t.abs().max().item<double>(), 1e-14);
  const torch::Tensor t = torch::linspace(0, 1, 21, kF64);
  for (const double side : {-1.0, 1.0}) {
    const torch::Tensor boundary = torch::stack({torch::full_like(t, side), t}, 1);
    EXPECT_LT((problem.predict(boundary) - klein_gordon_solution(boundary)).abs().max().item<double>(), 1e-14);
  }
}

TEST(KleinGordon, TaylorModeAndAutogradGiveTheSameSecondTimeDerivative) {
  for (const Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    SCOPED_TRACE(to_string(constraints));
    KleinGordonOptions o = tiny_klein_gordon(constraints);
    KleinGordonProblem taylor(o);
    o.derivatives = Derivatives::kAutograd;
    KleinGordonProblem autograd(o);
    const torch::Tensor xt = random_points(50, 3);
    const FieldsWanted all{true, true, true, true};
    const SpaceTimeFields a = taylor.fields(xt, all), b = autograd.fields(xt, all);
    for (auto part : {&SpaceTimeFields::u, &SpaceTimeFields::x, &SpaceTimeFields::t, &SpaceTimeFields::xx,
                      &SpaceTimeFields::tt})
      EXPECT_LT(((a.*part) - (b.*part)).abs().max().item<double>(), 1e-11);
    taylor.parameters().zero_gradients();
    autograd.parameters().zero_gradients();
    EXPECT_NEAR(taylor.loss({}).item<double>(), autograd.loss({}).item<double>(), 1e-10);
    taylor.loss({}).backward();
    autograd.loss({}).backward();
    const torch::Tensor g = taylor.parameters().gradients().clone(), h = autograd.parameters().gradients().clone();
    EXPECT_LT((g - h).abs().max().item<double>(), 1e-11 * (1 + g.abs().max().item<double>()));
  }
}

TEST(KleinGordon, DefaultsAreSoftConstraintsAndOptionsAreValidated) {
  const KleinGordonOptions o;
  EXPECT_EQ(o.constraints, Constraints::kSoft);
  EXPECT_EQ(o.validate(), "");
  KleinGordonOptions bad;
  bad.reference_nt = 1;
  EXPECT_NE(bad.validate().find("reference_nt must be"), std::string::npos);
  bad = {};
  bad.bc_weight = -1;
  EXPECT_THROW(KleinGordonProblem{bad}, InvalidArgument);
}

// ---- training -------------------------------------------------------------------------------

template <typename Problem>
void expect_training_lowers_the_error(Problem& problem, int64_t epochs, double factor) {
  const double initial = problem.evaluate().value;
  Bfgs solver;  // dense SSBroyden2
  TrainOptions options;
  options.epochs = epochs;
  options.metric_every = 0;
  const Summary summary = train(problem, solver, options, make_layout(std::make_shared<SelfComm>()));
  EXPECT_EQ(summary.metric_name, "rel_l2");
  EXPECT_LT(summary.metric, factor * initial) << "rel. L2 from " << initial << " to " << summary.metric;
}

template <typename Options>
Options trainable(Options o) {
  o.nf = 500;
  o.n0 = 64;
  o.nb = 64;
  o.width = 16;
  return o;
}

TEST(BurgersTraining, DenseQuasiNewtonHalvesTheRelativeL2Error) {
  // Measured: 0.61 -> 0.24 in 200 iterations (0.7 s).
  BurgersProblem problem(trainable(tiny_burgers(Constraints::kHard)));
  expect_training_lowers_the_error(problem, 200, 0.5);
}

TEST(KleinGordonTraining, DenseQuasiNewtonHalvesTheRelativeL2Error) {
  // Soft constraints of weight 100. Measured: 1.56 -> 0.15 in 400 iterations (3.7 s).
  KleinGordonProblem problem(trainable(tiny_klein_gordon(Constraints::kSoft)));
  expect_training_lowers_the_error(problem, 400, 0.5);
}

// ---- the CLI --------------------------------------------------------------------------------

TEST(BurgersCli, TrainsAndWritesTheFieldAndRefusesBadOptions) {
  const fs::path dir = test::scratch("burgers_cli");
  const test::Outcome o = test::run_cli("train --problem burgers --solver lbfgs --epochs 2 --nf 64 --depth 2 --width 6 "
                                        "--quiet --out " + (dir / "run").string());
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_TRUE(fs::exists(dir / "run" / "field.csv"));
  EXPECT_NE(test::slurp(dir / "run" / "config.ini").find("viscosity = 0.0031830988618379"), std::string::npos);
  test::expect_one_line_error("train --problem burgers --viscosity -1", "--viscosity must be finite and > 0");
  test::expect_one_line_error("train --problem burgers --derivatives fused", "--derivatives fused");
  test::expect_one_line_error("train --problem klein_gordon --viscosity 0.1", "viscosity");
  test::expect_one_line_error("reference burgers --dt 0.1 --out x.mat", "--dt applies to ddtrain reference allen_cahn");
  ASSERT_EQ(test::run_cli("reference burgers --nx 9 --nt 3 --out " + (dir / "ref.mat").string()).status, 0);
  EXPECT_TRUE(fs::exists(dir / "ref.mat"));
}

TEST(KleinGordonCli, TrainsWithSoftAndHardConstraints) {
  const fs::path dir = test::scratch("klein_gordon_cli");
  for (const char* constraints : {"soft", "hard"}) {
    const test::Outcome o = test::run_cli(std::string("train --problem klein_gordon --solver lbfgs --epochs 2 --nf 64 "
                                                      "--depth 2 --width 6 --quiet --constraints ") +
                                          constraints + " --out " + (dir / constraints).string());
    ASSERT_EQ(o.status, 0) << o.err;
  }
}

}  // namespace
}  // namespace ddtrain
