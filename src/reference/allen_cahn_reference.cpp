#include "ddtrain/reference/allen_cahn_reference.hpp"

#include <cmath>
#include <complex>
#include <cstddef>
#include <limits>
#include <unsupported/Eigen/FFT>

#include "ddtrain/error.hpp"

namespace ddtrain::reference {
namespace {

using Complex = std::complex<double>;
using Spectrum = std::vector<Complex>;  // half spectrum of a real signal: nx / 2 + 1 modes

constexpr double kPi = 3.14159265358979323846;

bool is_finite_positive(double value) { return std::isfinite(value) && value > 0.0; }
bool is_finite_nonnegative(double value) { return std::isfinite(value) && value >= 0.0; }

double output_interval(const AllenCahnReferenceOptions& options) {
  return options.t_end / (options.nt_out - 1);
}

int steps_per_output(const AllenCahnReferenceOptions& options) {
  // The small slack keeps an interval that is an exact multiple of dt up to rounding (0.005 /
  // 1e-4 = 50.000000000000007) from being split into one step too many.
  const double ratio = output_interval(options) / options.dt;
  return static_cast<int>(std::ceil(ratio * (1.0 - 1e-12)));
}

std::vector<double> periodic_grid(int nx) {
  std::vector<double> x(nx);
  for (int i = 0; i < nx; ++i) x[i] = -1.0 + 2.0 * i / nx;
  return x;
}

std::vector<double> output_times(const AllenCahnReferenceOptions& options) {
  std::vector<double> t(options.nt_out);
  for (int j = 0; j < options.nt_out; ++j) t[j] = j * output_interval(options);
  t.back() = options.t_end;  // exactly t_end, not a rounded (nt_out - 1) * interval
  return t;
}

double initial_condition(double x) { return x * x * std::cos(kPi * x); }

/// Diagonal of the linear part in Fourier space, mode m = 0..nx/2: the domain has length 2, so
/// the wavenumber is k = pi * m and u_xx becomes -k^2. The linear reaction term +reaction * u is
/// kept in the (exactly integrated) linear part; only -reaction * u^3 is treated by ETDRK4's
/// quadrature.
std::vector<double> linear_operator(const AllenCahnReferenceOptions& options) {
  const int modes = options.nx / 2 + 1;
  std::vector<double> linear(modes);
  for (int m = 0; m < modes; ++m) {
    const double k = kPi * m;
    linear[m] = options.reaction - options.diffusion * k * k;
  }
  return linear;
}

/// ETDRK4 coefficients per Fourier mode (notation of Kassam & Trefethen 2005, their Fig. 2).
struct EtdCoefficients {
  std::vector<double> e, e_half, q, f1, f2, f3;
};

/// Evaluates the phi-function combinations by averaging over points on a circle of radius 1
/// centred at h*L: the direct formulas lose all digits to cancellation when |h*L| is small, the
/// contour mean does not. L is real, so the upper half circle and the real part suffice.
EtdCoefficients etd_coefficients(const std::vector<double>& linear, double h, int contour_points) {
  const std::size_t modes = linear.size();
  EtdCoefficients c{std::vector<double>(modes), std::vector<double>(modes),
                    std::vector<double>(modes), std::vector<double>(modes),
                    std::vector<double>(modes), std::vector<double>(modes)};
  for (std::size_t m = 0; m < modes; ++m) {
    const double hl = h * linear[m];
    c.e[m] = std::exp(hl);
    c.e_half[m] = std::exp(hl / 2.0);
    Complex q{}, f1{}, f2{}, f3{};
    for (int p = 0; p < contour_points; ++p) {
      const Complex r = std::polar(1.0, kPi * (p + 0.5) / contour_points);
      const Complex z = hl + r;
      const Complex ez = std::exp(z);
      const Complex z3 = z * z * z;
      q += (std::exp(z / 2.0) - 1.0) / z;
      f1 += (-4.0 - z + ez * (4.0 - 3.0 * z + z * z)) / z3;
      f2 += (2.0 + z + ez * (z - 2.0)) / z3;
      f3 += (-4.0 - 3.0 * z - z * z + ez * (4.0 - z)) / z3;
    }
    c.q[m] = h * q.real() / contour_points;
    c.f1[m] = h * f1.real() / contour_points;
    c.f2[m] = h * f2.real() / contour_points;
    c.f3[m] = h * f3.real() / contour_points;
  }
  return c;
}

/// One ETDRK4 integrator for a fixed grid and step: owns the FFT plans and scratch buffers so the
/// time loop allocates nothing.
class AllenCahnStepper {
 public:
  AllenCahnStepper(const AllenCahnReferenceOptions& options, double h)
      : nx_(options.nx),
        reaction_(options.reaction),
        coef_(etd_coefficients(linear_operator(options), h, options.contour_points)),
        physical_(nx_),
        nv_(modes()),
        na_(modes()),
        nb_(modes()),
        nc_(modes()),
        a_(modes()),
        b_(modes()),
        c_(modes()) {
    // Half spectrum: real signals need only modes 0..nx/2, halving the FFT work.
    fft_.SetFlag(Eigen::FFT<double>::HalfSpectrum);
  }

  Spectrum to_spectrum(const std::vector<double>& u) {
    Spectrum v(modes());
    fft_.fwd(v.data(), u.data(), nx_);
    return v;
  }

  void to_physical(const Spectrum& v, std::vector<double>& u) {
    u.resize(nx_);
    fft_.inv(u.data(), v.data(), nx_);
  }

  /// Advances v by one step of size h (Kassam & Trefethen's etdrk4 loop body).
  void step(Spectrum& v) {
    const std::size_t n = modes();
    nonlinear(v, nv_);
    for (std::size_t m = 0; m < n; ++m) a_[m] = coef_.e_half[m] * v[m] + coef_.q[m] * nv_[m];
    nonlinear(a_, na_);
    for (std::size_t m = 0; m < n; ++m) b_[m] = coef_.e_half[m] * v[m] + coef_.q[m] * na_[m];
    nonlinear(b_, nb_);
    for (std::size_t m = 0; m < n; ++m)
      c_[m] = coef_.e_half[m] * a_[m] + coef_.q[m] * (2.0 * nb_[m] - nv_[m]);
    nonlinear(c_, nc_);
    for (std::size_t m = 0; m < n; ++m) {
      v[m] = coef_.e[m] * v[m] + coef_.f1[m] * nv_[m] + 2.0 * coef_.f2[m] * (na_[m] + nb_[m]) +
             coef_.f3[m] * nc_[m];
    }
  }

 private:
  std::size_t modes() const { return static_cast<std::size_t>(nx_ / 2 + 1); }

  /// Spectrum of the nonlinear term -reaction * u^3, evaluated pointwise on the grid.
  void nonlinear(const Spectrum& v, Spectrum& out) {
    fft_.inv(physical_.data(), v.data(), nx_);
    for (double& value : physical_) value = -reaction_ * value * value * value;
    fft_.fwd(out.data(), physical_.data(), nx_);
  }

  int nx_;
  double reaction_;
  EtdCoefficients coef_;
  Eigen::FFT<double> fft_;
  std::vector<double> physical_;
  Spectrum nv_, na_, nb_, nc_, a_, b_, c_;
};

void store_column(const std::vector<double>& column, int j, ReferenceField& field) {
  const std::size_t offset = static_cast<std::size_t>(j) * column.size();
  for (std::size_t i = 0; i < column.size(); ++i) {
    DDTRAIN_CHECK(std::isfinite(column[i]), NumericalError,
                  "Allen-Cahn reference solve: non-finite value at x = ", field.x[i],
                  ", t = ", field.t[j], "; reduce dt");
    field.u[offset + i] = column[i];
  }
}

}  // namespace

std::string AllenCahnReferenceOptions::validate() const {
  const std::string prefix = "Allen-Cahn reference options: ";
  if (nx < 4 || nx % 2 != 0) return prefix + "nx must be even and >= 4, got " + std::to_string(nx);
  if (nt_out < 2) return prefix + "nt_out must be >= 2, got " + std::to_string(nt_out);
  if (!is_finite_positive(t_end))
    return prefix + "t_end must be finite and > 0, got " + std::to_string(t_end);
  if (!is_finite_nonnegative(diffusion))
    return prefix + "diffusion must be finite and >= 0, got " + std::to_string(diffusion);
  if (!is_finite_nonnegative(reaction))
    return prefix + "reaction must be finite and >= 0, got " + std::to_string(reaction);
  if (!is_finite_positive(dt))
    return prefix + "dt must be finite and > 0, got " + std::to_string(dt);
  // Caps the number of steps so a typo (dt = 1e-14) fails here rather than running for days.
  const double steps = t_end / dt;
  if (steps > 1e9)
    return prefix + "t_end / dt = " + std::to_string(steps) + " steps exceeds the limit of 1e9";
  if (contour_points < 8)
    return prefix + "contour_points must be >= 8, got " + std::to_string(contour_points);
  return "";
}

double ReferenceField::value(int i, int j) const {
  DDTRAIN_CHECK(i >= 0 && i < nx() && j >= 0 && j < nt(), InvalidArgument,
                "ReferenceField::value: index (", i, ", ", j, ") outside the ", nx(), " x ", nt(),
                " grid");
  return u[static_cast<std::size_t>(i) + x.size() * static_cast<std::size_t>(j)];
}

double effective_time_step(const AllenCahnReferenceOptions& options) {
  const std::string problem = options.validate();
  DDTRAIN_CHECK(problem.empty(), InvalidArgument, problem);
  return output_interval(options) / steps_per_output(options);
}

ReferenceField solve_allen_cahn(const AllenCahnReferenceOptions& options) {
  const double h = effective_time_step(options);  // validates
  ReferenceField field;
  field.x = periodic_grid(options.nx);
  field.t = output_times(options);
  field.u.resize(static_cast<std::size_t>(options.nx) * options.nt_out);

  std::vector<double> u(options.nx);
  for (int i = 0; i < options.nx; ++i) u[i] = initial_condition(field.x[i]);
  store_column(u, 0, field);  // exact initial data, not an FFT round trip of it

  AllenCahnStepper stepper(options, h);
  Spectrum v = stepper.to_spectrum(u);
  const int steps = steps_per_output(options);
  for (int j = 1; j < options.nt_out; ++j) {
    for (int s = 0; s < steps; ++s) stepper.step(v);
    stepper.to_physical(v, u);
    store_column(u, j, field);
  }
  return field;
}

}  // namespace ddtrain::reference
