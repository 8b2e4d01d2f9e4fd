// Tests of the Allen–Cahn reference solver: exactness on the two sub-problems with closed-form
// solutions, temporal convergence, and properties the physical solution must have.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <functional>
#include <string>
#include <vector>

#include "ddtrain/error.hpp"
#include "ddtrain/reference/allen_cahn_reference.hpp"

namespace ddtrain::reference {
namespace {

constexpr double kPi = 3.14159265358979323846;

double max_abs_difference(const ReferenceField& a, const ReferenceField& b) {
  EXPECT_EQ(a.u.size(), b.u.size());
  double difference = 0.0;
  for (std::size_t k = 0; k < a.u.size() && k < b.u.size(); ++k)
    difference = std::max(difference, std::abs(a.u[k] - b.u[k]));
  return difference;
}

ReferenceField solve_with_dt(AllenCahnReferenceOptions options, double dt) {
  options.dt = dt;
  return solve_allen_cahn(options);
}

// Grid index of -x_i on the periodic grid x_i = -1 + 2i/nx (x_0 = -1 is its own mirror image).
int mirror_index(int i, int nx) { return (nx - i) % nx; }

TEST(AllenCahnReference, DefaultsAreValid) {
  EXPECT_EQ(AllenCahnReferenceOptions{}.validate(), "");
}

TEST(AllenCahnReference, GridMatchesPublishedLayout) {
  const ReferenceField field = solve_allen_cahn({});
  ASSERT_EQ(field.nx(), 512);
  ASSERT_EQ(field.nt(), 201);
  ASSERT_EQ(field.u.size(), 512u * 201u);
  EXPECT_DOUBLE_EQ(field.x.front(), -1.0);
  EXPECT_DOUBLE_EQ(field.x.back(), 1.0 - 2.0 / 512);
  EXPECT_DOUBLE_EQ(field.t.front(), 0.0);
  EXPECT_DOUBLE_EQ(field.t.back(), 1.0);
  EXPECT_NEAR(field.t[1], 0.005, 1e-15);
}

TEST(AllenCahnReference, InitialConditionIsXSquaredCosPiX) {
  const ReferenceField field = solve_allen_cahn({});
  for (int i = 0; i < field.nx(); ++i) {
    const double x = field.x[i];
    EXPECT_NEAR(field.value(i, 0), x * x * std::cos(kPi * x), 1e-15) << "x = " << x;
  }
}

// Default setup in full (0.05 s per solve): dt and dt/2 must agree to 1e-9.
TEST(AllenCahnReference, DefaultTimeStepIsSelfConverged) {
  const AllenCahnReferenceOptions options;
  const double dt = effective_time_step(options);
  EXPECT_NEAR(dt, options.dt, 1e-15);  // the default divides the output interval 0.005
  const double difference =
      max_abs_difference(solve_with_dt(options, dt), solve_with_dt(options, dt / 2));
  EXPECT_LT(difference, 1e-9);
}

// ETDRK4 is fourth order: halving a coarse step must shrink the change ~16x. Coarse steps keep
// the differences far above the ~1e-11 rounding floor.
TEST(AllenCahnReference, TimeSteppingIsFourthOrder) {
  const AllenCahnReferenceOptions options;
  const ReferenceField coarse = solve_with_dt(options, 0.005);
  const ReferenceField medium = solve_with_dt(options, 0.0025);
  const ReferenceField fine = solve_with_dt(options, 0.00125);
  const double ratio = max_abs_difference(coarse, medium) / max_abs_difference(medium, fine);
  EXPECT_GT(ratio, 12.0);
  EXPECT_LT(ratio, 20.0);
}

// Maximum principle: |u0| <= 1 and +-1 are stable equilibria, so |u| never exceeds 1.
TEST(AllenCahnReference, SolutionStaysWithinUnitBound) {
  const ReferenceField field = solve_allen_cahn({});
  for (double value : field.u) {
    ASSERT_TRUE(std::isfinite(value));
    ASSERT_LE(std::abs(value), 1.0 + 1e-6);
  }
}

// u0 is even and the equation commutes with x -> -x, so u stays even; a wrong wavenumber sign
// or a shifted grid would break this.
TEST(AllenCahnReference, SolutionIsEvenInX) {
  const ReferenceField field = solve_allen_cahn({});
  for (int j = 0; j < field.nt(); ++j)
    for (int i = 0; i < field.nx(); ++i)
      ASSERT_NEAR(field.value(i, j), field.value(mirror_index(i, field.nx()), j), 1e-10)
          << "x = " << field.x[i] << ", t = " << field.t[j];
}

// At t = 1 the solution is metastable: plateaus u ~ -1 for |x| > 1/2 and u ~ +1 for
// 1/4 <= |x| <= 3/8, joined by sharp interfaces at the zeros |x| = 1/2 of u0 (u0 changes sign
// there and the reaction drives each side to its own stable state). The centre lags behind: u0
// and u0' vanish at x = 0, so u(0, t) starts at the unstable equilibrium 0 and only the small
// diffusive push 2 nu > 0 moves it, leaving a shallow positive dip.
TEST(AllenCahnReference, FinalTimeHasMetastableShape) {
  const ReferenceField field = solve_allen_cahn({});
  const int nx = field.nx();
  const int last = field.nt() - 1;
  std::vector<double> final_u(field.u.end() - nx, field.u.end());
  double max_abs = 0.0;
  for (double value : final_u) max_abs = std::max(max_abs, std::abs(value));
  EXPECT_GE(max_abs, 0.95);
  EXPECT_LE(max_abs, 1.0 + 1e-6);

  const auto index_of = [nx](double x) {
    return static_cast<int>(std::lround((x + 1.0) * nx / 2));
  };
  EXPECT_LT(field.value(index_of(-1.0), last), -0.999);
  EXPECT_LT(field.value(index_of(0.75), last), -0.999);
  EXPECT_GT(field.value(index_of(0.25), last), 0.98);
  EXPECT_GT(field.value(index_of(-0.3125), last), 0.99);
  const double centre = field.value(index_of(0.0), last);
  EXPECT_GT(centre, 0.0);
  EXPECT_LT(centre, 0.1);

  std::vector<double> crossings;  // midpoints of the grid cells where u(., 1) changes sign
  for (int i = 0; i + 1 < nx; ++i)
    if ((final_u[i] > 0.0) != (final_u[i + 1] > 0.0))
      crossings.push_back(0.5 * (field.x[i] + field.x[i + 1]));
  ASSERT_EQ(crossings.size(), 2u);
  EXPECT_NEAR(crossings[0], -0.5, 0.01);
  EXPECT_NEAR(crossings[1], 0.5, 0.01);
}

// Without diffusion every grid point follows u' = r(u - u^3), solved exactly by
// u = u0 e^{rt} / sqrt(1 + u0^2 (e^{2rt} - 1)). Checks the ETDRK4 coefficients, the treatment
// of the linear reaction term and the output times, independently of the FFT derivatives.
TEST(AllenCahnReference, PureReactionMatchesExactOdeSolution) {
  AllenCahnReferenceOptions options;
  options.nx = 64;
  options.diffusion = 0.0;
  const ReferenceField field = solve_allen_cahn(options);
  const double r = options.reaction;
  for (int j = 0; j < field.nt(); ++j) {
    const double growth = std::exp(r * field.t[j]);
    for (int i = 0; i < field.nx(); ++i) {
      const double u0 = field.value(i, 0);
      const double exact = u0 * growth / std::sqrt(1.0 + u0 * u0 * (growth * growth - 1.0));
      ASSERT_NEAR(field.value(i, j), exact, 1e-10)
          << "x = " << field.x[i] << ", t = " << field.t[j];
    }
  }
}

// Without reaction the scheme must reproduce the heat equation's exact Fourier solution: each
// mode m of the length-2 periodic grid decays as exp(-nu (pi m)^2 t). A naive DFT computes it.
TEST(AllenCahnReference, PureDiffusionMatchesFourierSolution) {
  AllenCahnReferenceOptions options;
  options.nx = 32;
  options.nt_out = 11;
  options.reaction = 0.0;
  options.diffusion = 0.01;
  const ReferenceField field = solve_allen_cahn(options);
  const int n = field.nx();
  std::vector<std::complex<double>> coefficients(n);  // modes m = -n/2+1 .. n/2 at m + n/2 - 1
  for (int m = -n / 2 + 1; m <= n / 2; ++m) {
    std::complex<double> sum = 0.0;
    for (int i = 0; i < n; ++i) sum += field.value(i, 0) * std::polar(1.0, -2.0 * kPi * m * i / n);
    coefficients[m + n / 2 - 1] = sum / static_cast<double>(n);
  }
  for (int j = 0; j < field.nt(); ++j) {
    for (int i = 0; i < n; ++i) {
      std::complex<double> exact = 0.0;
      for (int m = -n / 2 + 1; m <= n / 2; ++m) {
        const double decay = std::exp(-options.diffusion * kPi * kPi * m * m * field.t[j]);
        exact += coefficients[m + n / 2 - 1] * decay * std::polar(1.0, 2.0 * kPi * m * i / n);
      }
      ASSERT_NEAR(field.value(i, j), exact.real(), 1e-12)
          << "x = " << field.x[i] << ", t = " << field.t[j];
    }
  }
}

TEST(AllenCahnReference, EffectiveStepDividesOutputInterval) {
  AllenCahnReferenceOptions options;
  options.dt = 3e-4;  // 0.005 / 3e-4 = 16.7 -> 17 steps of 0.005 / 17
  EXPECT_NEAR(effective_time_step(options), 0.005 / 17, 1e-17);
  options.dt = 1.0;  // larger than the output interval: one step per output
  EXPECT_NEAR(effective_time_step(options), 0.005, 1e-17);
}

TEST(AllenCahnReference, ValueRejectsIndicesOutsideGrid) {
  AllenCahnReferenceOptions options;
  options.nx = 8;
  options.nt_out = 3;
  const ReferenceField field = solve_allen_cahn(options);
  EXPECT_NO_THROW(field.value(7, 2));
  EXPECT_THROW(field.value(8, 0), InvalidArgument);
  EXPECT_THROW(field.value(0, 3), InvalidArgument);
  EXPECT_THROW(field.value(-1, 0), InvalidArgument);
}

struct InvalidCase {
  const char* field;  // must appear in the message
  std::function<void(AllenCahnReferenceOptions&)> spoil;
};

TEST(AllenCahnReference, InvalidOptionsAreRejectedWithMessage) {
  const std::vector<InvalidCase> cases = {
      {"nx", [](AllenCahnReferenceOptions& o) { o.nx = 2; }},
      {"nx", [](AllenCahnReferenceOptions& o) { o.nx = 511; }},
      {"nt_out", [](AllenCahnReferenceOptions& o) { o.nt_out = 1; }},
      {"t_end", [](AllenCahnReferenceOptions& o) { o.t_end = 0.0; }},
      {"t_end", [](AllenCahnReferenceOptions& o) { o.t_end = NAN; }},
      {"diffusion", [](AllenCahnReferenceOptions& o) { o.diffusion = -1e-4; }},
      {"diffusion", [](AllenCahnReferenceOptions& o) { o.diffusion = INFINITY; }},
      {"reaction", [](AllenCahnReferenceOptions& o) { o.reaction = -5.0; }},
      {"dt", [](AllenCahnReferenceOptions& o) { o.dt = 0.0; }},
      {"dt", [](AllenCahnReferenceOptions& o) { o.dt = -1e-3; }},
      {"dt", [](AllenCahnReferenceOptions& o) { o.dt = 1e-14; }},
      {"contour_points", [](AllenCahnReferenceOptions& o) { o.contour_points = 4; }},
  };
  for (const InvalidCase& c : cases) {
    AllenCahnReferenceOptions options;
    c.spoil(options);
    const std::string message = options.validate();
    EXPECT_NE(message.find(c.field), std::string::npos) << "message: '" << message << "'";
    EXPECT_THROW(solve_allen_cahn(options), InvalidArgument) << c.field;
    EXPECT_THROW(effective_time_step(options), InvalidArgument) << c.field;
  }
}

}  // namespace
}  // namespace ddtrain::reference
