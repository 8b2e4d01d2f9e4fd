// Trust-region core: L-SR1 compact form, the OBS subproblem solution against a dense reference
// (interior, boundary, indefinite and hard case), dogleg, the storing rule, the ratio test and
// radius logic on constructed steps, and the "tr" solver on a quadratic and on Rosenbrock.
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/solvers/trust_region.hpp"

using namespace ddtrain;

namespace {

/// An objective given by a function (loss, optional gradient) of x.
class FunctionObjective final : public Objective {
 public:
  using Function = std::function<double(const torch::Tensor&, torch::Tensor*)>;
  FunctionObjective(torch::Tensor x0, Function f) : x0_(std::move(x0)), f_(std::move(f)) {}
  int64_t dimension() const override { return x0_.numel(); }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    return f_(x, gradient);
  }
  torch::Tensor initial_point() const override { return x0_.clone(); }

 private:
  torch::Tensor x0_;
  Function f_;
};

/// f(x) = 1/2 x'Ax - b'x.
FunctionObjective quadratic(torch::Tensor A, torch::Tensor b, torch::Tensor x0) {
  return FunctionObjective(std::move(x0), [A, b](const torch::Tensor& x, torch::Tensor* g) {
    torch::Tensor ax = A.mv(x);
    if (g != nullptr) g->copy_(ax - b);
    return (0.5 * x.dot(ax) - b.dot(x)).item<double>();
  });
}

FunctionObjective rosenbrock() {
  return FunctionObjective(torch::tensor({-1.2, 1.0}, torch::kFloat64),
                           [](const torch::Tensor& x, torch::Tensor* g) {
                             const double a = x[0].item<double>(), b = x[1].item<double>();
                             if (g != nullptr) {
                               g->index_put_({0}, -2 * (1 - a) - 400 * a * (b - a * a));
                               g->index_put_({1}, 200 * (b - a * a));
                             }
                             return (1 - a) * (1 - a) + 100 * (b - a * a) * (b - a * a);
                           });
}

Eigen::VectorXd to_eigen_vector(const torch::Tensor& t) {
  Eigen::VectorXd v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v(i) = t[i].item<double>();
  return v;
}

/// Symmetric d x d matrix with the given eigenvalues and a random orthonormal basis.
torch::Tensor symmetric_with_eigenvalues(const std::vector<double>& eigenvalues, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t d = static_cast<int64_t>(eigenvalues.size());
  torch::Tensor q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kFloat64)));
  return q.matmul(torch::diag(torch::tensor(eigenvalues, torch::kFloat64))).matmul(q.t());
}

/// L-SR1 model with `pairs` secant pairs (s random, y = A s) and its dense counterpart, built by
/// the recursive SR1 update from gamma I (gamma of the model).
struct Sr1Case {
  Lsr1Model model;
  Eigen::MatrixXd dense;
};
Sr1Case sr1_case(const torch::Tensor& A, int pairs, int capacity, uint64_t seed) {
  torch::manual_seed(seed);
  Sr1Case c{Lsr1Model(capacity), {}};
  std::vector<torch::Tensor> s, y;
  const int64_t d = A.size(0);
  for (int k = 0; k < pairs; ++k) {
    torch::Tensor sk = torch::randn({d}, torch::kFloat64);
    torch::Tensor yk = A.mv(sk);
    EXPECT_TRUE(c.model.push(sk, yk)) << "pair " << k << " unexpectedly skipped";
    s.push_back(sk);
    y.push_back(yk);
  }
  const int first = std::max(0, pairs - capacity);
  Eigen::MatrixXd B = c.model.gamma() * Eigen::MatrixXd::Identity(d, d);
  for (int k = first; k < pairs; ++k) {
    Eigen::VectorXd sk = to_eigen_vector(s[k]), yk = to_eigen_vector(y[k]);
    Eigen::VectorXd r = yk - B * sk;
    B += r * r.transpose() / r.dot(sk);
  }
  c.dense = B;
  return c;
}

/// Dense reference for min g'p + 1/2 p'Bp, ||p|| <= radius: full eigen-decomposition,
/// bisection on the secular equation, explicit hard case.
Eigen::VectorXd dense_trust_region(const Eigen::MatrixXd& B, const Eigen::VectorXd& g,
                                   double radius) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(B);
  const Eigen::VectorXd lambda = eig.eigenvalues();
  const Eigen::VectorXd a = eig.eigenvectors().transpose() * g;
  auto p_at = [&](double sigma, bool skip_lowest) {
    Eigen::VectorXd c(lambda.size());
    for (int i = 0; i < lambda.size(); ++i) {
      const bool lowest = std::abs(lambda(i) - lambda(0)) < 1e-9;
      c(i) = (skip_lowest && lowest) ? 0.0 : -a(i) / (lambda(i) + sigma);
    }
    return Eigen::VectorXd(eig.eigenvectors() * c);
  };
  if (lambda(0) > 0 && p_at(0, false).norm() <= radius) return p_at(0, false);
  double lo = std::max(0.0, -lambda(0));
  double lowest_mass = 0;
  for (int i = 0; i < lambda.size(); ++i)
    if (std::abs(lambda(i) - lambda(0)) < 1e-9) lowest_mass += a(i) * a(i);
  const bool skip = std::sqrt(lowest_mass) < 1e-10 * g.norm();
  if (skip && p_at(lo, true).norm() <= radius) {
    Eigen::VectorXd p = p_at(lo, true);
    return p + std::sqrt(radius * radius - p.squaredNorm()) * eig.eigenvectors().col(0);
  }
  double hi = lo + g.norm() / radius + std::abs(lambda(0)) + 1;
  for (int i = 0; i < 300; ++i) {
    const double mid = 0.5 * (lo + hi);
    (p_at(mid, skip).norm() > radius ? lo : hi) = mid;
  }
  return p_at(0.5 * (lo + hi), skip);
}

double model_value(const Eigen::MatrixXd& B, const Eigen::VectorXd& g, const Eigen::VectorXd& p) {
  return g.dot(p) + 0.5 * p.dot(B * p);
}

struct ObsCheck {
  double model_error;   // |m(p_obs) - m(p_ref)| / |m(p_ref)|
  double kkt_residual;  // ||(B + sigma I) p + g|| / ||g||
};

/// Checks the OBS solution against the dense reference and the optimality (KKT) conditions.
ObsCheck check_obs(const Sr1Case& c, const torch::Tensor& g, double radius, bool expect_boundary,
                   bool expect_hard) {
  SubproblemSolution sol = c.model.solve(g, radius);
  const Eigen::VectorXd p = to_eigen_vector(sol.step), ge = to_eigen_vector(g);
  const Eigen::VectorXd ref = dense_trust_region(c.dense, ge, radius);
  const double lambda_min =
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(c.dense).eigenvalues()(0);
  const double m_obs = model_value(c.dense, ge, p), m_ref = model_value(c.dense, ge, ref);
  ObsCheck out;
  out.model_error = std::abs(m_obs - m_ref) / std::abs(m_ref);
  const double sigma = sol.multiplier;
  out.kkt_residual = ((c.dense + sigma * Eigen::MatrixXd::Identity(p.size(), p.size())) * p + ge)
                         .norm() / ge.norm();
  EXPECT_LE(out.model_error, 1e-10);
  EXPECT_LE(out.kkt_residual, 1e-9);
  EXPECT_GE(sigma, 0);
  EXPECT_GE(lambda_min + sigma, -1e-10);
  EXPECT_LE(p.norm(), radius * (1 + 1e-12));
  EXPECT_NEAR(sol.norm, p.norm(), 1e-12 * radius);
  EXPECT_NEAR(sol.predicted, -m_obs, 1e-10 * std::abs(m_obs));
  EXPECT_EQ(sol.on_boundary, expect_boundary);
  EXPECT_EQ(sol.hard_case, expect_hard);
  if (expect_boundary) {
    EXPECT_NEAR(p.norm(), radius, 1e-10 * radius);
  }
  if (!expect_hard) {  // the hard-case solution is not unique (+-tau z)
    EXPECT_LE((p - ref).norm(), 1e-8 * std::max(1.0, ref.norm()));
  }
  std::printf("    OBS vs dense: relative model error %.2e, KKT residual %.2e, sigma %.4g\n",
              out.model_error, out.kkt_residual, sigma);
  return out;
}

/// A positive definite L-SR1 case (SR1 of a positive definite A need not be: take the first
/// seed that gives one).
Sr1Case positive_definite_case() {
  torch::Tensor A = symmetric_with_eigenvalues({3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 8}, 3);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Sr1Case c = sr1_case(A, 4, 4, seed);
    if (Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(c.dense).eigenvalues()(0) > 0.1) return c;
  }
  ADD_FAILURE() << "no positive definite L-SR1 case found";
  return sr1_case(A, 4, 4, 0);
}

}  // namespace

TEST(Lsr1Model, CompactFormMatchesRecursiveSr1AndSecantConditions) {
  torch::Tensor A = symmetric_with_eigenvalues({-2, -0.5, 0.3, 1, 2, 3, 5, 8}, 1);
  Sr1Case c = sr1_case(A, 5, 3, 2);  // capacity 3: the oldest two pairs are dropped
  EXPECT_EQ(c.model.size(), 3);
  EXPECT_EQ(c.model.pairs_used(), 3);
  const int64_t d = A.size(0);
  torch::Tensor identity = torch::eye(d, torch::kFloat64);
  double error = 0;
  for (int64_t j = 0; j < d; ++j) {
    Eigen::VectorXd column = to_eigen_vector(c.model.multiply(identity[j]));
    error = std::max(error, (column - c.dense.col(j)).norm());
  }
  EXPECT_LT(error, 1e-10 * c.dense.norm());
  // The spectrum of B: r eigenvalues from the compact form, gamma on the complement.
  std::vector<double> spectrum = c.model.eigenvalues();
  EXPECT_EQ(spectrum.size(), 3u);
  spectrum.resize(d, c.model.gamma());
  std::sort(spectrum.begin(), spectrum.end());
  Eigen::VectorXd dense_eig = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(c.dense).eigenvalues();
  for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(spectrum[i], dense_eig(i), 1e-9 * c.dense.norm());
  torch::Tensor v = torch::randn({d}, torch::kFloat64);
  EXPECT_NEAR(c.model.quadratic(v), to_eigen_vector(v).dot(c.dense * to_eigen_vector(v)),
              1e-10 * c.dense.norm() * v.dot(v).item<double>());
}

TEST(Lsr1Model, StoringRuleSkipsDegeneratePairs) {
  Lsr1Model model(3);
  torch::Tensor s = torch::tensor({1.0, 0.0, 0.0}, torch::kFloat64);
  EXPECT_FALSE(model.push(s, torch::tensor({0.0, 1.0, 0.0}, torch::kFloat64)));  // s'y = 0
  EXPECT_FALSE(model.push(s, torch::full({3}, NAN, torch::kFloat64)));
  EXPECT_TRUE(model.push(s, torch::tensor({2.0, 1.0, 0.0}, torch::kFloat64)));
  // B s = y already holds for this pair: (y - Bs)'s = 0 -> skipped.
  torch::Tensor y_again = model.multiply(s);
  EXPECT_FALSE(model.push(s, y_again));
  EXPECT_EQ(model.size(), 1);
  EXPECT_EQ(model.skipped(), 3);
  EXPECT_DOUBLE_EQ(model.gamma(), 5.0 / 2.0);  // y'y / |s'y|
  torch::Tensor bs = model.multiply(s);
  EXPECT_TRUE(torch::allclose(bs, torch::tensor({2.0, 1.0, 0.0}, torch::kFloat64), 1e-12, 1e-12));
}

TEST(Lsr1Model, EmptyMemoryGivesTheFirstOrderStep) {
  Lsr1Model model(5);
  torch::Tensor g = torch::tensor({3.0, -4.0}, torch::kFloat64);
  SubproblemSolution sol = model.solve(g, 0.5);
  EXPECT_TRUE(torch::allclose(sol.step, g * (-0.5 / 5.0), 1e-14, 1e-14));
  EXPECT_NEAR(sol.predicted, 0.5 * 5.0, 1e-13);
  SubproblemSolution dl = model.dogleg(g, 0.5);
  EXPECT_TRUE(torch::allclose(dl.step, sol.step, 1e-14, 1e-14));
}

TEST(Lsr1Model, ObsInteriorSolutionIsTheNewtonStep) {
  Sr1Case c = positive_definite_case();
  torch::manual_seed(5);
  torch::Tensor g = torch::randn({10}, torch::kFloat64);
  check_obs(c, g, 1e3, false, false);
}

TEST(Lsr1Model, ObsBoundarySolutionPositiveDefinite) {
  Sr1Case c = positive_definite_case();
  torch::manual_seed(6);
  torch::Tensor g = torch::randn({10}, torch::kFloat64);
  check_obs(c, g, 0.05, true, false);
}

TEST(Lsr1Model, ObsBoundarySolutionIndefinite) {
  torch::Tensor A = symmetric_with_eigenvalues({-3, -1, 0.5, 1, 2, 4, 6, 9, 10, 12}, 7);
  for (int seed = 0; seed < 5; ++seed) {
    Sr1Case c = sr1_case(A, 5, 5, 10 + seed);
    ASSERT_LT(c.model.eigenvalues().front(), 0);
    torch::manual_seed(20 + seed);
    torch::Tensor g = torch::randn({10}, torch::kFloat64);
    for (double radius : {1e-3, 0.3, 10.0, 1e3}) check_obs(c, g, radius, true, false);
  }
}

TEST(Lsr1Model, ObsHardCase) {
  torch::Tensor A = symmetric_with_eigenvalues({-3, -1, 0.5, 1, 2, 4, 6, 9, 10, 12}, 7);
  Sr1Case c = sr1_case(A, 5, 5, 11);
  // g orthogonal to the eigenvector of the (negative, simple) lowest eigenvalue of B.
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c.dense);
  ASSERT_LT(eig.eigenvalues()(0), 0);
  ASSERT_GT(eig.eigenvalues()(1) - eig.eigenvalues()(0), 1e-3);
  Eigen::VectorXd ge = eig.eigenvectors().col(1) + 0.5 * eig.eigenvectors().col(4) +
                       0.25 * eig.eigenvectors().col(9);
  torch::Tensor g = torch::from_blob(ge.data(), {10}, torch::kFloat64).clone();
  // ||p_hat|| at sigma = -lambda_min: the hard case needs radius above it.
  Eigen::VectorXd p_hat = Eigen::VectorXd::Zero(10);
  for (int i = 1; i < 10; ++i)
    p_hat -= eig.eigenvectors().col(i) * eig.eigenvectors().col(i).dot(ge) /
             (eig.eigenvalues()(i) - eig.eigenvalues()(0));
  const double radius_hard = 2 * p_hat.norm();
  check_obs(c, g, radius_hard, true, true);
  // Below ||p_hat|| the solution is the ordinary boundary one.
  check_obs(c, g, 0.5 * p_hat.norm(), true, false);
  // Hard case with g = 0: a pure negative-curvature step.
  SubproblemSolution zero = c.model.solve(torch::zeros({10}, torch::kFloat64), 0.7);
  EXPECT_TRUE(zero.hard_case);
  EXPECT_NEAR(zero.norm, 0.7, 1e-12);
  EXPECT_NEAR(zero.predicted, -0.5 * eig.eigenvalues()(0) * 0.49, 1e-10);
}

TEST(Lsr1Model, Float32AgreesWithFloat64) {
  // Flat vectors in float32 (as in training), small matrices in float64 either way.
  torch::Tensor A = symmetric_with_eigenvalues({-3, -1, 0.5, 1, 2, 4, 6, 9, 10, 12}, 7);
  torch::manual_seed(30);
  Lsr1Model m64(5), m32(5);
  for (int k = 0; k < 5; ++k) {
    torch::Tensor s = torch::randn({10}, torch::kFloat64);
    torch::Tensor y = A.mv(s);
    ASSERT_TRUE(m64.push(s, y));
    ASSERT_TRUE(m32.push(s.to(torch::kFloat32), y.to(torch::kFloat32)));
  }
  torch::Tensor g = torch::randn({10}, torch::kFloat64);
  for (double radius : {0.01, 1.0, 100.0}) {
    SubproblemSolution p64 = m64.solve(g, radius);
    SubproblemSolution p32 = m32.solve(g.to(torch::kFloat32), radius);
    EXPECT_EQ(p32.step.scalar_type(), torch::kFloat32);
    EXPECT_LE((p32.step.to(torch::kFloat64) - p64.step).norm().item<double>(), 1e-3 * p64.norm);
    EXPECT_NEAR(p32.predicted, p64.predicted, 1e-3 * p64.predicted);
    EXPECT_LE(p32.norm, radius * (1 + 1e-5));
  }
}

TEST(Lsr1Model, DoglegIsBetweenCauchyAndExactStep) {
  Sr1Case c = positive_definite_case();
  torch::manual_seed(8);
  torch::Tensor g = torch::randn({10}, torch::kFloat64);
  const double gn = g.norm().item<double>();
  const double gbg = c.model.quadratic(g);
  for (double radius : {1e-3, 0.05, 0.3, 1e3}) {
    SubproblemSolution dl = c.model.dogleg(g, radius);
    SubproblemSolution exact = c.model.solve(g, radius);
    const double t = std::min(radius / gn, gn * gn / gbg);  // Cauchy point along -g
    const double cauchy_pred = t * gn * gn - 0.5 * t * t * gbg;
    EXPECT_LE(dl.norm, radius * (1 + 1e-12));
    EXPECT_GE(dl.predicted, cauchy_pred * (1 - 1e-12));
    EXPECT_LE(dl.predicted, exact.predicted * (1 + 1e-12));
  }
  // Large radius: the Newton point, the exact solution.
  SubproblemSolution dl = c.model.dogleg(g, 1e3);
  EXPECT_TRUE(torch::allclose(dl.step, c.model.solve(g, 1e3).step, 1e-9, 1e-12));
}

TEST(Lsr1Model, SaveLoadRoundTrip) {
  torch::Tensor A = symmetric_with_eigenvalues({-1, 1, 2, 3, 4}, 9);
  Sr1Case c = sr1_case(A, 3, 3, 9);
  torch::serialize::OutputArchive out;
  c.model.save(out, "m.");
  std::stringstream buffer;
  out.save_to(buffer);
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  Lsr1Model loaded(3);
  loaded.load(in, "m.");
  torch::Tensor g = torch::randn({5}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(loaded.solve(g, 0.4).step, c.model.solve(g, 0.4).step, 0, 0));
}

TEST(TrustRegion, ReductionRatioConventions) {
  EXPECT_EQ(reduction_ratio(1.0, 0.0, 5.0), -INFINITY);   // pred <= 0: reject
  EXPECT_EQ(reduction_ratio(1.0, -1.0, 5.0), -INFINITY);
  EXPECT_EQ(reduction_ratio(NAN, 1.0, 5.0), -INFINITY);   // non-finite trial: reject
  EXPECT_EQ(reduction_ratio(0.0, 1e-20, 5.0), INFINITY);  // pred below rounding of f
  EXPECT_DOUBLE_EQ(reduction_ratio(0.5, 2.0, 5.0), 0.25);
}

TEST(TrustRegion, AcceptanceRejectionAndRadiusUpdate) {
  // Linear objective f(x) = c'x + bump(x): the first-order model is exact without the bump.
  torch::Tensor c = torch::tensor({3.0, 4.0}, torch::kFloat64);
  double bump = 0;
  FunctionObjective objective(torch::zeros({2}, torch::kFloat64),
                              [&](const torch::Tensor& x, torch::Tensor* g) {
                                if (g != nullptr) g->copy_(c);
                                return c.dot(x).item<double>() + bump;
                              });
  TrustRegionOptions options;  // radius 0.1, eta 0.25 / 0.75, increase 1.2, decrease 0.9
  TrustRegion region(options);
  torch::Tensor x = torch::tensor({1.0, 1.0}, torch::kFloat64);
  const torch::Tensor x0 = x.clone();
  double loss = 7.0;
  torch::Tensor g = c.clone();

  // A bad step: the loss increases -> rejected, x restored, radius 0.1 * 0.9.
  bump = 1.0;
  TrustRegionOutcome out = region.step(objective, x, loss, g, false);
  EXPECT_FALSE(out.accepted);
  EXPECT_NEAR(out.predicted, 0.1 * 5.0, 1e-14);
  EXPECT_LT(out.ratio, 0);
  EXPECT_TRUE(torch::equal(x, x0));
  EXPECT_EQ(loss, 7.0);
  EXPECT_NEAR(region.radius(), 0.09, 1e-15);

  // A non-finite trial -> rejected, radius 0.081.
  bump = NAN;
  out = region.step(objective, x, loss, g, true);
  EXPECT_FALSE(out.accepted);
  EXPECT_TRUE(std::isnan(out.actual));
  EXPECT_TRUE(torch::equal(x, x0));
  EXPECT_NEAR(region.radius(), 0.081, 1e-15);

  // An exact model (rho = 1) with a full-length step -> accepted, radius * 1.2.
  bump = 0;
  out = region.step(objective, x, loss, g, true);
  EXPECT_TRUE(out.accepted);
  EXPECT_NEAR(out.ratio, 1.0, 1e-12);
  EXPECT_TRUE(torch::allclose(x, x0 - 0.081 * c / 5.0, 1e-15, 1e-15));
  EXPECT_NEAR(loss, 7.0 - 0.081 * 5.0, 1e-14);
  EXPECT_NEAR(region.radius(), 0.081 * 1.2, 1e-15);

  // rho = 0.5 in (eta1, eta2): accepted, radius unchanged.
  const double radius = region.radius();
  bump = 0.5 * radius * 5.0;
  const double before = loss;
  out = region.step(objective, x, loss, g, false);
  EXPECT_TRUE(out.accepted);
  EXPECT_NEAR(out.ratio, 0.5, 1e-12);
  EXPECT_FALSE(out.gradient_valid);  // loss-only trial
  EXPECT_NEAR(loss, before - 0.5 * radius * 5.0, 1e-14);
  EXPECT_EQ(region.radius(), radius);

  // The radius never shrinks below min_radius, never grows above max_radius.
  region.set_radius(1.05e-3);
  EXPECT_FALSE(region.update(-1.0, 1.0, 0.0, 1.05e-3, 1.05e-3));
  EXPECT_DOUBLE_EQ(region.radius(), 1e-3);
  region.set_radius(1.9);
  EXPECT_TRUE(region.update(1.0, 1.0, 0.0, 1.9, 1.9));
  EXPECT_DOUBLE_EQ(region.radius(), 2.0);
  // A short step (||p|| < 0.9 radius) with rho > eta2 does not expand.
  EXPECT_TRUE(region.update(1.0, 1.0, 0.0, 0.5, 2.0));
  region.set_radius(1.0);
  EXPECT_TRUE(region.update(1.0, 1.0, 0.0, 0.5, 1.0));
  EXPECT_DOUBLE_EQ(region.radius(), 1.0);
}

TEST(TrustRegion, OptionsValidate) {
  EXPECT_EQ(TrustRegionOptions{}.validate(), "");
  EXPECT_EQ(TrustRegionOptions::local_defaults().validate("local."), "");
  TrustRegionOptions o;
  o.eta2 = 0.1;
  EXPECT_NE(o.validate().find("eta2 must be"), std::string::npos);
  o = {};
  o.decrease = 1.0;
  EXPECT_NE(o.validate().find("decrease must be"), std::string::npos);
  o = {};
  o.dogleg = true;
  EXPECT_NE(o.validate().find("dogleg needs model lsr1"), std::string::npos);
  o = TrustRegionOptions::local_defaults();
  o.eta1 = 1.5;
  EXPECT_NE(o.validate("local.").find("local.eta1 must be"), std::string::npos);
  EXPECT_THROW(TrustRegion{o}, InvalidArgument);
  EXPECT_THROW(parse_trust_region_model("newton"), InvalidArgument);
}

namespace {

/// Runs "tr" until ||x - x*|| <= tolerance; returns the iterations (or max_iterations + 1).
int iterations_to(TrustRegionSolverOptions options, Objective& objective, torch::Tensor x,
                  const torch::Tensor& solution, double tolerance, int max_iterations) {
  TrustRegionSolver solver(options);
  for (int k = 1; k <= max_iterations; ++k) {
    StepSummary s = step(solver, objective, x);
    EXPECT_NE(s.termination, Termination::kNumericalFailure);
    if ((x - solution).norm().item<double>() <= tolerance) return k;
  }
  return max_iterations + 1;
}

TrustRegionSolverOptions tr_options(TrustRegionModel model) {
  TrustRegionSolverOptions o;
  o.region.model = model;
  o.region.min_radius = 0;  // a first-order step has length radius: Delta_min would stall it
  return o;
}

}  // namespace

TEST(TrustRegionSolver, QuadraticConvergesFirstOrderAndLsr1) {
  torch::Tensor A = symmetric_with_eigenvalues({1, 1.5, 2, 3, 4}, 31);
  torch::Tensor b = torch::tensor({1.0, -2.0, 0.5, 3.0, -1.0}, torch::kFloat64);
  torch::Tensor solution = torch::linalg_solve(A, b);
  FunctionObjective f = quadratic(A, b, torch::zeros({5}, torch::kFloat64));
  const int first_order = iterations_to(tr_options(TrustRegionModel::kFirstOrder), f,
                                        torch::zeros({5}, torch::kFloat64), solution, 1e-6, 2000);
  const int lsr1 = iterations_to(tr_options(TrustRegionModel::kLsr1), f,
                                 torch::zeros({5}, torch::kFloat64), solution, 1e-6, 2000);
  std::printf("    quadratic (d=5, cond 4): first_order %d, lsr1 %d iterations to 1e-6\n",
              first_order, lsr1);
  EXPECT_LE(first_order, 300);
  EXPECT_LE(lsr1, 40);
}

TEST(TrustRegionSolver, RosenbrockConvergesFirstOrderAndLsr1) {
  torch::Tensor solution = torch::tensor({1.0, 1.0}, torch::kFloat64);
  FunctionObjective f = rosenbrock();
  auto run = [&](TrustRegionSolverOptions o, int max_iterations) {
    return iterations_to(o, f, f.initial_point(), solution, 1e-6, max_iterations);
  };
  // §3.1 defaults (increase 1.2, decrease 0.9): L-SR1 memory 5 and 3, dogleg, first order.
  // With these slow radius factors the iteration counts of L-SR1 depend on rounding: LibTorch
  // 1.13 + OpenBLAS took 4541 (m=5) and 3838 (m=3), LibTorch 2.11 + MKL 1739 and over 6000. So
  // for them the test asserts convergence within a generous budget, not a count.
  TrustRegionSolverOptions lsr1 = tr_options(TrustRegionModel::kLsr1);
  const int it_default = run(lsr1, 30000);
  lsr1.region.memory = 3;
  const int it_default_m3 = run(lsr1, 30000);
  lsr1.region.memory = 5;
  lsr1.region.dogleg = true;
  const int it_dogleg = run(lsr1, 6000);
  lsr1.region.dogleg = false;
  // The older code's factors (increase 2, decrease 0.5).
  lsr1.region.increase = 2.0;
  lsr1.region.decrease = 0.5;
  const int it_fast = run(lsr1, 6000);
  lsr1.region.memory = 3;
  const int it_fast_m3 = run(lsr1, 6000);
  const int it_first = run(tr_options(TrustRegionModel::kFirstOrder), 30000);
  std::printf("    Rosenbrock from (-1.2, 1) to 1e-6 (iterations): lsr1 m=5 %d, m=3 %d, dogleg %d; "
              "with increase 2 / decrease 0.5: m=5 %d, m=3 %d; first_order %d\n",
              it_default, it_default_m3, it_dogleg, it_fast, it_fast_m3, it_first);
  EXPECT_LT(it_default, 30000);
  EXPECT_LT(it_default_m3, 30000);
  EXPECT_LE(it_dogleg, 500);
  EXPECT_LE(it_fast, 150);
  EXPECT_LE(it_fast_m3, 150);
  EXPECT_LE(it_first, 20000);
}

TEST(TrustRegionSolver, StopsAtAStationaryPointAndKeepsTheCache) {
  torch::Tensor A = torch::eye(3, torch::kFloat64);
  torch::Tensor b = torch::zeros({3}, torch::kFloat64);
  FunctionObjective f = quadratic(A, b, torch::zeros({3}, torch::kFloat64));
  TrustRegionSolver solver(tr_options(TrustRegionModel::kLsr1));
  torch::Tensor x = torch::tensor({0.05, 0.0, 0.0}, torch::kFloat64);
  StepSummary first = step(solver, f, x);  // one L-SR1 step: trial with gradient, cached
  EXPECT_EQ(first.gradient_evaluations, 2);
  StepSummary second = step(solver, f, x);
  EXPECT_EQ(second.gradient_evaluations, 1);  // the start point came from the cache
  torch::Tensor zero = torch::zeros({3}, torch::kFloat64);
  StepSummary at_minimum = step(solver, f, zero);
  EXPECT_EQ(at_minimum.termination, Termination::kConverged);
  // A non-finite gradient stops the run instead of shrinking the radius forever.
  FunctionObjective broken(torch::zeros({2}, torch::kFloat64),
                           [](const torch::Tensor& x, torch::Tensor* g) {
                             if (g != nullptr) g->fill_(NAN);
                             return 1.0;
                           });
  TrustRegionSolver fresh(tr_options(TrustRegionModel::kFirstOrder));
  torch::Tensor y = torch::zeros({2}, torch::kFloat64);
  EXPECT_EQ(step(fresh, broken, y).termination, Termination::kNumericalFailure);
}
