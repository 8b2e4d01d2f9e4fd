#pragma once
// Reference solution of the viscous Burgers benchmark of the PINN literature (Raissi, Perdikaris
// & Karniadakis 2019; Kopaničáková, Kothari, Karniadakis & Krause 2024):
//
//   u_t + u u_x = nu u_xx,  x in [-1, 1],  t in [0, t_end],
//   u(x, 0) = -sin(pi x),   u(-1, t) = u(1, t) = 0,   nu = 0.01 / pi by default.
//
// By the Cole–Hopf transformation, with f(y) = exp(-cos(pi y) / (2 pi nu)) and eta = sqrt(4 nu t) z,
//
//   u(x, t) = - int sin(pi (x - eta)) f(x - eta) exp(-z^2) dz / int f(x - eta) exp(-z^2) dz,
//
// both integrals taken by Gauss–Hermite quadrature. f spans exp(+-50) for the default nu, so the
// sums are formed as log-sum-exp (every term scaled by the largest one). The solution develops a
// front at x = 0 of width about 0.007 (the largest slope, 152.005 at t = 0.5105, is the
// benchmark value of Basdevant et al., Computers & Fluids 14, 1986). Depends on nothing but the
// C++ standard library.
#include <string>
#include <vector>

#include "ddtrain/reference/allen_cahn_reference.hpp"

namespace ddtrain::reference {

/// Nodes z_i and weights w_i of the n-point Gauss–Hermite rule: int g(z) exp(-z^2) dz is
/// approximately sum_i w_i g(z_i), exact for polynomials g of degree < 2n.
struct GaussHermiteRule {
  std::vector<double> nodes;        ///< ascending
  std::vector<double> log_weights;  ///< log w_i (the weights reach 1e-300 for n in the hundreds)
};

/// The n-point rule: nodes by Golub–Welsch polished by Newton's method, weights from the
/// orthonormal Hermite recurrence (accurate however small). Throws ddtrain::InvalidArgument
/// unless 1 <= n <= 600 (beyond, the recurrence overflows at the outer nodes),
/// ddtrain::NumericalError if the eigenvalue solver fails.
GaussHermiteRule gauss_hermite(int n);

struct BurgersReferenceOptions {
  /// Grid points x_i = -1 + 2 i / (nx - 1), both ends included; >= 2. 256 as the published
  /// burgers_shock.mat.
  int nx = 256;
  /// Output times t_j = j t_end / (nt - 1), both ends included; >= 2.
  int nt = 101;
  double t_end = 1.0;                            ///< > 0
  double viscosity = 0.01 / 3.14159265358979323846;  ///< nu, > 0
  /// Gauss–Hermite nodes, in [8, 600]. The front needs many: on the default grid and nu, 50
  /// nodes differ from 600 by up to 1.8e-7, 100 and more by at most 5e-15 (measured).
  int quadrature_nodes = 200;

  /// "" when the options are usable, otherwise a one-line reason.
  std::string validate() const;
};

/// u(x, t) by the Cole–Hopf formula above, for one viscosity and quadrature rule.
class BurgersColeHopf {
 public:
  /// Throws ddtrain::InvalidArgument for a viscosity that is not finite and > 0 or a node count
  /// outside [8, 600].
  BurgersColeHopf(double viscosity, int quadrature_nodes);
  /// u(x, t) for t >= 0 (the initial condition -sin(pi x) at t = 0).
  double operator()(double x, double t) const;

 private:
  double viscosity_;
  GaussHermiteRule rule_;
};

/// u on the nx x nt grid of `options` (ReferenceField layout, u[i + nx j] = u(x_i, t_j)).
/// Throws ddtrain::InvalidArgument on invalid options.
ReferenceField solve_burgers(const BurgersReferenceOptions& options);

}  // namespace ddtrain::reference
