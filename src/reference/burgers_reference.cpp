#include "ddtrain/reference/burgers_reference.hpp"

#include <algorithm>
#include <cmath>

#include <Eigen/Eigenvalues>

#include "ddtrain/error.hpp"

namespace ddtrain::reference {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kMinNodes = 8, kMaxNodes = 600;

std::string check_nodes(int n) {
  if (n < kMinNodes || n > kMaxNodes)
    return "quadrature_nodes (Gauss-Hermite) must be in [" + std::to_string(kMinNodes) + ", " +
           std::to_string(kMaxNodes) + "], got " + std::to_string(n);
  return "";
}

}  // namespace

GaussHermiteRule gauss_hermite(int n) {
  DDTRAIN_CHECK(n >= 1 && n <= kMaxNodes, InvalidArgument, "gauss_hermite: n must be in [1, ",
                kMaxNodes, "], got ", n);
  // Golub–Welsch: the nodes are the eigenvalues of the Jacobi matrix of the Hermite recurrence
  // (zero diagonal, off-diagonal sqrt(k / 2)), accurate to about 1e-14 absolutely. Each is then
  // polished by Newton's method on the orthonormal Hermite polynomial p_n (weight exp(-z^2)),
  // whose derivative gives the weight accurately however small: w_i = 2 / p_n'(z_i)^2 with
  // p_n' = sqrt(2 n) p_{n-1} (the eigenvectors would give it only to an absolute 1e-16).
  constexpr double kPiToMinusQuarter = 0.7511255444649425;
  Eigen::VectorXd diagonal = Eigen::VectorXd::Zero(n), off_diagonal(std::max(n - 1, 0));
  for (int k = 1; k < n; ++k) off_diagonal[k - 1] = std::sqrt(0.5 * k);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver;
  solver.computeFromTridiagonal(diagonal, off_diagonal, Eigen::EigenvaluesOnly);
  DDTRAIN_CHECK(solver.info() == Eigen::Success, NumericalError,
                "gauss_hermite: the eigenvalues of the Jacobi matrix did not converge (n = ", n, ")");
  GaussHermiteRule rule;
  rule.nodes.assign(n, 0.0);
  rule.log_weights.assign(n, 0.0);
  for (int i = 0; i < n; ++i) {
    double z = solver.eigenvalues()[i], derivative = 0;
    for (int iteration = 0; iteration < 3; ++iteration) {
      double p1 = kPiToMinusQuarter, p2 = 0.0;
      for (int j = 0; j < n; ++j) {
        const double p3 = p2;
        p2 = p1;
        p1 = z * std::sqrt(2.0 / (j + 1)) * p2 - std::sqrt(static_cast<double>(j) / (j + 1)) * p3;
      }
      derivative = std::sqrt(2.0 * n) * p2;
      if (iteration < 2) z -= p1 / derivative;  // the last pass only evaluates p_n' at z
    }
    DDTRAIN_CHECK(std::isfinite(z) && std::isfinite(derivative) && derivative != 0, NumericalError,
                  "gauss_hermite: root ", i, " of ", n, " is not finite");
    rule.nodes[i] = z;
    rule.log_weights[i] = std::log(2.0) - 2.0 * std::log(std::abs(derivative));
  }
  // Exactly symmetric: the mirror images of the upper half.
  for (int i = 0; i < n / 2; ++i) {
    rule.nodes[i] = -rule.nodes[n - 1 - i];
    rule.log_weights[i] = rule.log_weights[n - 1 - i];
  }
  if (n % 2 == 1) rule.nodes[n / 2] = 0.0;  // the middle root exactly
  return rule;
}

std::string BurgersReferenceOptions::validate() const {
  if (nx < 2) return "nx must be >= 2, got " + std::to_string(nx);
  if (nt < 2) return "nt must be >= 2, got " + std::to_string(nt);
  if (!(t_end > 0) || !std::isfinite(t_end)) return "t_end must be finite and > 0";
  if (!(viscosity > 0) || !std::isfinite(viscosity)) return "viscosity must be finite and > 0";
  return check_nodes(quadrature_nodes);
}

BurgersColeHopf::BurgersColeHopf(double viscosity, int quadrature_nodes) : viscosity_(viscosity) {
  DDTRAIN_CHECK(viscosity > 0 && std::isfinite(viscosity), InvalidArgument,
                "viscosity must be finite and > 0");
  require_valid(check_nodes(quadrature_nodes));
  rule_ = gauss_hermite(quadrature_nodes);
}

double BurgersColeHopf::operator()(double x, double t) const {
  if (t <= 0) return -std::sin(kPi * x);
  const double scale = std::sqrt(4.0 * viscosity_ * t);
  const double inverse = 1.0 / (2.0 * kPi * viscosity_);
  // log of w_i f(x - eta_i), then sums scaled by the largest term (log-sum-exp).
  const size_t n = rule_.nodes.size();
  double largest = -INFINITY;
  for (size_t i = 0; i < n; ++i)
    largest = std::max(largest, rule_.log_weights[i] - inverse * std::cos(kPi * (x - scale * rule_.nodes[i])));
  double numerator = 0, denominator = 0;
  for (size_t i = 0; i < n; ++i) {
    const double y = x - scale * rule_.nodes[i];
    const double term = std::exp(rule_.log_weights[i] - inverse * std::cos(kPi * y) - largest);
    numerator += std::sin(kPi * y) * term;
    denominator += term;
  }
  return -numerator / denominator;
}

ReferenceField solve_burgers(const BurgersReferenceOptions& options) {
  require_valid(options.validate());
  const BurgersColeHopf u(options.viscosity, options.quadrature_nodes);
  ReferenceField field;
  field.x.resize(options.nx);
  field.t.resize(options.nt);
  for (int i = 0; i < options.nx; ++i) field.x[i] = -1.0 + 2.0 * i / (options.nx - 1);
  for (int j = 0; j < options.nt; ++j) field.t[j] = options.t_end * j / (options.nt - 1);
  field.x.back() = 1.0;
  field.t.back() = options.t_end;
  field.u.resize(static_cast<size_t>(options.nx) * options.nt);
  for (int j = 0; j < options.nt; ++j)
    for (int i = 0; i < options.nx; ++i) field.u[i + static_cast<size_t>(options.nx) * j] = u(field.x[i], field.t[j]);
  return field;
}

}  // namespace ddtrain::reference
