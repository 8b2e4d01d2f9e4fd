// The dense quasi-Newton solver (ddtrain/solvers/bfgs.hpp) and the warm-up chain.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/bfgs.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/solvers/warmup.hpp"
#include "test_helpers.hpp"

namespace ddtrain {
namespace {

using test::FunctionObjective;

const DenseUpdate kAllUpdates[] = {DenseUpdate::kBfgs, DenseUpdate::kSsbfgsOl, DenseUpdate::kSsbfgsAb,
                                   DenseUpdate::kSsbroyden1, DenseUpdate::kSsbroyden2};

/// ALGORITHMS.md §6 written out literally with dense torch operations (v, theta, tau as the text
/// states them), for comparison with the solver's fused rank-2 form.
torch::Tensor literal_update(DenseUpdate update, const torch::Tensor& H, const torch::Tensor& s,
                             const torch::Tensor& y, double b, bool first) {
  const double ys = y.dot(s).item<double>(), rho = 1 / ys;
  const int64_t d = s.numel();
  auto bfgs = [&](const torch::Tensor& Hs) {
    const torch::Tensor Hy = Hs.mv(y);
    const double h = rho * y.dot(Hy).item<double>();
    return Hs - rho * (torch::outer(Hy, s) + torch::outer(s, Hy)) + rho * (1 + h) * torch::outer(s, s);
  };
  switch (update) {
    case DenseUpdate::kBfgs:
      return bfgs(first ? H / (rho * y.dot(y).item<double>()) : H);
    case DenseUpdate::kSsbfgsOl:
      return bfgs(H * b);  // H / tau, tau = 1 / b
    case DenseUpdate::kSsbfgsAb:
      return bfgs(H / std::min(1.0, 1 / b));
    default: {
      const torch::Tensor Hy = H.mv(y);
      const double yHy = y.dot(Hy).item<double>(), h = rho * yHy, a = b * h - 1;
      const double rho_minus = std::min(1.0, h * (1 - std::sqrt(std::abs(a) / (1 + a))));
      const double theta_minus = (rho_minus - 1) / a;
      double theta;
      if (update == DenseUpdate::kSsbroyden2) {
        theta = std::max(theta_minus, std::min(1 / rho_minus, (1 - b) / b));
      } else {
        const double theta_sr1 = 1 / (1 - b);
        if (b == 1) theta = theta_minus;
        else if (b > 1) theta = std::max(theta_minus, theta_sr1);
        else theta = std::min(std::max(1.0, b * (1 + std::sqrt(std::abs(a) / (1 + a)))), theta_sr1);
      }
      const double sigma = 1 + theta * a;
      double tau;
      if (first) {
        tau = h / sigma;
      } else {
        const double sigma_tilde = std::pow(std::abs(sigma), 1.0 / (1.0 - d));
        const double rho_hat = std::min(1.0, 1 / b);
        tau = theta <= 0 ? std::min(rho_hat * sigma_tilde, sigma) : rho_hat * std::min(sigma_tilde, 1 / theta);
      }
      const double phi = (1 - theta) / (1 + a * theta);
      const torch::Tensor v = rho * s - Hy / yHy;
      return (H - torch::outer(Hy, Hy) / yHy + phi * yHy * torch::outer(v, v)) / tau + rho * torch::outer(s, s);
    }
  }
}

struct UpdateCase {
  torch::Tensor H, s, y;
  double b;
};

/// An SPD H, a step s = t p along p = -H g and y with y's > 0: what a Wolfe step produces.
UpdateCase make_case(int64_t d, uint64_t seed, bool identity) {
  torch::manual_seed(seed);
  torch::Tensor m = torch::randn({d, d}, torch::kFloat64);
  UpdateCase c;
  c.H = identity ? torch::eye(d, torch::kFloat64) : m.matmul(m.t()) / d + 0.5 * torch::eye(d, torch::kFloat64);
  const torch::Tensor g = torch::randn({d}, torch::kFloat64);
  const double t = 0.7;
  c.s = -t * c.H.mv(g);
  torch::Tensor A = torch::randn({d, d}, torch::kFloat64);
  A = A.matmul(A.t()) / d + torch::eye(d, torch::kFloat64);  // the "true" Hessian
  c.y = A.mv(c.s);
  c.b = -t * c.s.dot(g).item<double>() / c.y.dot(c.s).item<double>();
  return c;
}

TEST(DenseUpdate, FusedFormEqualsTheLiteralFormulasOfEveryRule) {
  for (DenseUpdate update : kAllUpdates) {
    for (bool first : {true, false}) {
      const UpdateCase c = make_case(12, first ? 3 : 4, first);
      const torch::Tensor expected = literal_update(update, c.H, c.s, c.y, c.b, first);
      torch::Tensor H = c.H.clone();
      const torch::Tensor u = H.mv(c.y);
      const DenseUpdateCoefficients k = dense_update_coefficients(
          update, c.y.dot(c.s).item<double>(), c.y.dot(u).item<double>(), c.b, first, c.s.numel());
      apply_dense_update(H, c.s, u, k);
      H = full_symmetric(H);
      EXPECT_TRUE(torch::allclose(H, expected, 1e-11, 1e-12))
          << to_string(update) << (first ? " (first update)" : "") << ": max difference "
          << (H - expected).abs().max().item<double>();
      // Every rule satisfies the secant equation H+ y = s.
      EXPECT_TRUE(torch::allclose(H.mv(c.y), c.s, 1e-10, 1e-12)) << to_string(update);
    }
  }
}

TEST(DenseUpdate, SelfScalingChangesTheScaleAndPlainBfgsDoesNotAfterTheFirstUpdate) {
  const UpdateCase c = make_case(8, 5, false);
  const double ys = c.y.dot(c.s).item<double>(), yhy = c.y.dot(c.H.mv(c.y)).item<double>();
  EXPECT_EQ(dense_update_coefficients(DenseUpdate::kBfgs, ys, yhy, c.b, false, 8).inverse_tau, 1.0);
  EXPECT_DOUBLE_EQ(dense_update_coefficients(DenseUpdate::kSsbfgsOl, ys, yhy, c.b, false, 8).inverse_tau, c.b);
  EXPECT_TRUE(dense_update_coefficients(DenseUpdate::kSsbroyden2, ys, yhy, c.b, false, 8).scaled);
  // a = b h - 1 = 0 (the model is exact along s): SSBroyden falls back to plain BFGS.
  const double b_exact = ys / yhy;
  const DenseUpdateCoefficients exact =
      dense_update_coefficients(DenseUpdate::kSsbroyden2, ys, yhy, b_exact, false, 8);
  EXPECT_EQ(exact.inverse_tau, 1.0);
  EXPECT_EQ(exact.alpha, 0.0);
  EXPECT_DOUBLE_EQ(exact.beta, -1 / ys);
}

TEST(DenseUpdate, RowBlocksSplitOverRanksGiveTheSameProductsAndUpdateBitForBit) {
  const UpdateCase c = make_case(53, 9, false);  // 27 row pairs over 16 blocks: uneven blocks
  torch::Tensor H = torch::triu(c.H).contiguous();
  const torch::Tensor g = torch::randn({53}, torch::kFloat64);
  const std::vector<torch::Tensor> whole = symmetric_products(H, {c.y, g});
  EXPECT_TRUE(torch::allclose(whole[0], c.H.mv(c.y), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(whole[1], c.H.mv(g), 1e-12, 1e-12));
  for (int ranks : {2, 3, 5}) {
    torch::Tensor table = torch::zeros({kDenseBlocks, 2, 53}, torch::kFloat64);
    torch::Tensor updated = H.clone();
    DenseUpdateCoefficients k;
    k.inverse_tau = 0.9, k.alpha = 0.1, k.beta = -0.2, k.gamma = 0.3;
    int64_t covered = 0;
    for (int r = 0; r < ranks; ++r) {
      const BlockRange mine = dense_blocks_of(r, ranks);
      EXPECT_EQ(mine.first, covered);
      covered = mine.last;
      table += symmetric_product_blocks(H, {c.y, g}, mine);  // what the allreduce does
      apply_dense_update(updated, c.s, c.y, k, mine);
    }
    EXPECT_EQ(covered, kDenseBlocks);
    const std::vector<torch::Tensor> split = sum_product_blocks(table);
    EXPECT_TRUE(torch::equal(split[0], whole[0])) << ranks << " ranks";
    EXPECT_TRUE(torch::equal(split[1], whole[1])) << ranks << " ranks";
    torch::Tensor serial = H.clone();
    apply_dense_update(serial, c.s, c.y, k);
    EXPECT_TRUE(torch::equal(updated, serial)) << ranks << " ranks";
  }
}

TEST(DenseUpdate, NamesRoundTripAndUnknownIsOneClearError) {
  for (DenseUpdate update : kAllUpdates) EXPECT_EQ(parse_dense_update(to_string(update)), update);
  try {
    parse_dense_update("ssbroyden3");
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown --update 'ssbroyden3'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ssbroyden2"), std::string::npos) << e.what();
  }
}

/// Iterations until the gradient tolerance stops the solver (or `limit`).
int64_t solve(Solver& solver, Objective& objective, torch::Tensor& x, int64_t limit, double* loss) {
  for (int64_t k = 1; k <= limit; ++k) {
    StepSummary s = step(solver, objective, x);
    *loss = s.loss;
    if (s.termination != Termination::kRunning) {
      EXPECT_EQ(s.termination, Termination::kConverged) << s.message;
      return k;
    }
  }
  return limit;
}

TEST(Bfgs, EveryRuleSolvesRosenbrockInTenDimensionsToMachinePrecision) {
  for (DenseUpdate update : kAllUpdates) {
    torch::Tensor x0 = torch::full({10}, -1.0, torch::kFloat64);
    x0.index_put_({torch::indexing::Slice(1, torch::indexing::None, 2)}, 1.0);
    FunctionObjective objective(test::rosenbrock, x0);
    BfgsOptions options;
    options.update = update;
    options.gradient_tolerance = 1e-12;
    Bfgs solver(options);
    torch::Tensor x = x0.clone();
    double loss = 1;
    const int64_t iterations = solve(solver, objective, x, 2000, &loss);
    EXPECT_LT(loss, 1e-25) << to_string(update) << " after " << iterations << " iterations";
    EXPECT_LT((x - 1).abs().max().item<double>(), 1e-11) << to_string(update);
  }
}

TEST(Bfgs, SelfScaledBroydenSolvesRosenbrockInFiftyDimensions) {
  torch::Tensor x0 = torch::full({50}, -1.2, torch::kFloat64);
  x0.index_put_({torch::indexing::Slice(1, torch::indexing::None, 2)}, 1.0);
  FunctionObjective objective(test::rosenbrock, x0);
  Bfgs solver;  // SSBroyden2
  torch::Tensor x = x0.clone();
  double loss = 1;
  const int64_t iterations = solve(solver, objective, x, 3000, &loss);
  EXPECT_LT(loss, 1e-25) << iterations << " iterations";
  EXPECT_LT(iterations, 1500);
}

TEST(Bfgs, SolvesAnIllConditionedQuadratic) {
  // Condition 1e3: eigenvalues log-spaced in [1, 1000].
  const int64_t d = 30;
  torch::manual_seed(7);
  const torch::Tensor q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kFloat64)));
  const torch::Tensor eigenvalues = torch::logspace(0, 3, d, 10.0, torch::kFloat64);
  const torch::Tensor A = q.matmul(torch::diag(eigenvalues)).matmul(q.t());
  const torch::Tensor rhs = torch::randn({d}, torch::kFloat64);
  FunctionObjective objective([&](const torch::Tensor& x) { return 0.5 * x.dot(A.mv(x)) - rhs.dot(x); },
                              torch::zeros({d}, torch::kFloat64));
  for (DenseUpdate update : kAllUpdates) {
    BfgsOptions options;
    options.update = update;
    options.gradient_tolerance = 1e-10;
    Bfgs solver(options);
    torch::Tensor x = torch::zeros({d}, torch::kFloat64);
    // It ends converged, or (depending on the BLAS's rounding; seen with Debian's OpenBLAS on
    // one CPU) at the rounding floor of f, where no line search can decrease it any more.
    int64_t iterations = 0;
    StepSummary s;
    while (iterations < 500 && (s = step(solver, objective, x)).termination == Termination::kRunning)
      ++iterations;
    EXPECT_TRUE(s.termination == Termination::kConverged ||
                s.termination == Termination::kLineSearchFailure)
        << to_string(update) << ": " << s.message;
    // f is O(10): its rounding limits |x - x*| to about sqrt(eps |f| / lambda_min) ~ 5e-8.
    EXPECT_LT((x - torch::linalg_solve(A, rhs)).abs().max().item<double>(), 1e-6)
        << to_string(update) << " after " << iterations << " iterations";
  }
}

TEST(Bfgs, SkippedUpdatesAreCountedAndLeaveTheIdentity) {
  FunctionObjective objective(test::Quadratic(6), torch::zeros({6}, torch::kFloat64));
  BfgsOptions options;
  options.curvature_epsilon = 1e30;  // no pair is curved enough: every update is skipped
  Bfgs solver(options);
  torch::Tensor x = torch::zeros({6}, torch::kFloat64);
  for (int k = 0; k < 5; ++k) step(solver, objective, x);
  EXPECT_EQ(solver.skipped_updates(), 5);
  EXPECT_TRUE(torch::equal(solver.inverse_hessian(), torch::eye(6, torch::kFloat64)));
  const auto counters = solver.counters();
  ASSERT_EQ(counters.size(), 4u);
  EXPECT_EQ(counters[0].first, "skipped_updates");
  EXPECT_EQ(counters[0].second, 5);
}

TEST(Bfgs, RefusesAnInverseHessianOverTheMemoryLimitWithTheSizes) {
  FunctionObjective objective(test::Quadratic(100), torch::zeros({100}, torch::kFloat64));
  BfgsOptions options;
  options.memory_limit_bytes = 10000;  // 100^2 float64 values need 80 kB
  Bfgs solver(options);
  torch::Tensor x = torch::zeros({100}, torch::kFloat64);
  try {
    step(solver, objective, x);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("100 parameters"), std::string::npos) << message;
    EXPECT_NE(message.find("--dense-memory-limit"), std::string::npos) << message;
  }
  EXPECT_GT(dense_bytes_needed(100, 8), 80000);
  EXPECT_GT(default_dense_memory_limit(), 0);
  // A small limit keeps its digits in the message.
  EXPECT_EQ(format_megabytes(10000), "0.01 MB");
  EXPECT_EQ(format_megabytes(565200000), "565.2 MB");
}

TEST(Bfgs, ResumesFromItsSavedStateExactly) {
  torch::Tensor x0 = torch::tensor({-1.2, 1.0, -1.2, 1.0, 0.5}, torch::kFloat64);
  FunctionObjective objective(test::rosenbrock, x0);
  Bfgs reference;
  torch::Tensor x = x0.clone();
  for (int k = 0; k < 10; ++k) step(reference, objective, x);
  torch::serialize::OutputArchive out;
  reference.save_state(out);
  std::ostringstream buffer;
  out.save_to(buffer);
  const torch::Tensor x_saved = x.clone();
  for (int k = 0; k < 10; ++k) step(reference, objective, x);

  Bfgs resumed;
  torch::serialize::InputArchive in;
  std::istringstream stream(buffer.str());
  in.load_from(stream);
  resumed.load_state(in);
  torch::Tensor y = x_saved.clone();
  for (int k = 0; k < 10; ++k) step(resumed, objective, y);
  EXPECT_TRUE(torch::equal(x, y));
  EXPECT_TRUE(torch::equal(reference.inverse_hessian(), resumed.inverse_hessian()));
}

TEST(WarmupChain, RunsTheFirstSolverForItsStepsThenTheSecond) {
  FunctionObjective objective(test::Quadratic(5), torch::zeros({5}, torch::kFloat64));
  AdamOptions adam;
  adam.learning_rate = 0.01;
  WarmupChain chain(std::make_unique<Adam>(adam), 3, std::make_unique<Bfgs>());
  EXPECT_EQ(chain.name(), "bfgs");
  torch::Tensor x = torch::zeros({5}, torch::kFloat64);
  // The warm-up part equals Adam alone.
  Adam alone(adam);
  torch::Tensor x_adam = torch::zeros({5}, torch::kFloat64);
  for (int k = 0; k < 3; ++k) {
    EXPECT_TRUE(chain.warming_up());
    step(chain, objective, x);
    step(alone, objective, x_adam);
  }
  EXPECT_TRUE(torch::equal(x, x_adam));
  EXPECT_FALSE(chain.warming_up());
  double loss = 0;
  solve(chain, objective, x, 100, &loss);
  EXPECT_LT((x - test::Quadratic(5).minimizer()).abs().max().item<double>(), 1e-8);
  EXPECT_EQ(chain.counters().front().first, "warmup_steps");
  EXPECT_EQ(chain.counters().front().second, 3);
}

TEST(WarmupChain, RefusesTheSameSolverTwiceAndZeroSteps) {
  EXPECT_THROW(WarmupChain(std::make_unique<Adam>(), 3, std::make_unique<Adam>()), InvalidArgument);
  EXPECT_THROW(WarmupChain(std::make_unique<Adam>(), 0, std::make_unique<Bfgs>()), InvalidArgument);
}

TEST(WarmupChain, ResumesInTheRightPhase) {
  FunctionObjective objective(test::Quadratic(4), torch::zeros({4}, torch::kFloat64));
  auto make = [] { return WarmupChain(std::make_unique<Adam>(), 2, std::make_unique<Bfgs>()); };
  WarmupChain a = make();
  torch::Tensor x = torch::zeros({4}, torch::kFloat64);
  for (int k = 0; k < 3; ++k) step(a, objective, x);
  torch::serialize::OutputArchive out;
  a.save_state(out);
  std::ostringstream buffer;
  out.save_to(buffer);
  const torch::Tensor saved = x.clone();
  step(a, objective, x);

  WarmupChain b = make();
  torch::serialize::InputArchive in;
  std::istringstream stream(buffer.str());
  in.load_from(stream);
  b.load_state(in);
  EXPECT_FALSE(b.warming_up());
  torch::Tensor y = saved.clone();
  step(b, objective, y);
  EXPECT_TRUE(torch::equal(x, y));
}

}  // namespace
}  // namespace ddtrain
