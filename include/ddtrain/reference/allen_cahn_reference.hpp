#pragma once
// Reference solution of the 1D Allen–Cahn equation used to measure the error of the Allen–Cahn
// PINN:
//
//   u_t - diffusion * u_xx + reaction * u^3 - reaction * u = 0,  x in [-1, 1) periodic,
//   t in [0, t_end],  u(x, 0) = x^2 cos(pi x).
//
// With the defaults this is the classic benchmark (nu = 1e-4, reaction 5, 512 x 201 grid) whose
// reference data is usually distributed as AC.mat (variables x, tt, uu). The solver is a Fourier
// pseudo-spectral method in x with ETDRK4 in time (Kassam & Trefethen, SIAM J. Sci. Comput. 26,
// 2005); it depends on Eigen only, not on LibTorch.
#include <string>
#include <vector>

namespace ddtrain::reference {

struct AllenCahnReferenceOptions {
  /// Number of equispaced grid points x_i = -1 + 2 i / nx on the periodic interval [-1, 1).
  /// Must be even and >= 4 (the real FFT pairs modes; the Nyquist mode needs an even count).
  /// 512 matches the grid of the published AC.mat.
  int nx = 512;
  /// Number of output times t_j = j * t_end / (nt_out - 1), j = 0..nt_out-1 (both ends
  /// included). Must be >= 2. 201 matches AC.mat (output every 0.005).
  int nt_out = 201;
  /// Final time, > 0.
  double t_end = 1.0;
  /// Diffusion coefficient nu in front of u_xx, >= 0.
  double diffusion = 1e-4;
  /// Reaction coefficient (the 5 in 5u^3 - 5u), >= 0.
  double reaction = 5.0;
  /// Largest time step. The step actually taken is the largest one <= dt that divides the output
  /// interval t_end / (nt_out - 1) evenly, so every output time is reached exactly (see
  /// effective_time_step). 5e-4 gives 10 steps per output with the defaults. ETDRK4 is fourth
  /// order: at 5e-4 the time-stepping error (~1e-12) is already below the rounding noise that the
  /// unstable reaction (growth rate 5 around u = 0) amplifies to ~1e-11, so halving dt changes the
  /// default solution by only ~1e-11 in max norm (target: 1e-9), and the solve takes ~0.05 s.
  /// Smaller steps only add rounding.
  double dt = 5e-4;
  /// Points on the half circle used to evaluate the ETDRK4 phi-functions by contour integrals
  /// (Kassam & Trefethen's cure for cancellation at small |dt * L|). The linear operator is real,
  /// so the upper half circle suffices; 32 points give phi-functions accurate to rounding.
  /// Must be >= 8.
  int contour_points = 32;

  /// Returns "" when the options are usable, otherwise a one-line description of the first
  /// problem found.
  std::string validate() const;
};

/// A space-time field on a tensor grid, stored like MATLAB's uu (nx x nt, column-major).
struct ReferenceField {
  std::vector<double> x;  ///< nx grid points, on [-1, 1) for solve_allen_cahn
  std::vector<double> t;  ///< nt output times
  std::vector<double> u;  ///< nx * nt values, u[i + nx * j] = u(x_i, t_j)

  int nx() const { return static_cast<int>(x.size()); }
  int nt() const { return static_cast<int>(t.size()); }
  /// u(x_i, t_j); throws ddtrain::InvalidArgument when (i, j) lies outside the grid.
  double value(int i, int j) const;
};

/// The time step solve_allen_cahn really takes: output_interval / ceil(output_interval / dt).
/// Throws ddtrain::InvalidArgument on invalid options.
double effective_time_step(const AllenCahnReferenceOptions& options);

/// Solves the Allen–Cahn problem above and returns u on the nx x nt_out grid. Throws
/// ddtrain::InvalidArgument on invalid options and ddtrain::NumericalError if the solution stops
/// being finite.
ReferenceField solve_allen_cahn(const AllenCahnReferenceOptions& options);

}  // namespace ddtrain::reference
