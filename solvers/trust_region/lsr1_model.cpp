// Limited-memory SR1 in compact form and the orthonormal-basis (OBS) trust-region subproblem
// solver of Brust, Erway & Marcia, "On solving L-SR1 trust-region subproblems", Comput. Optim.
// Appl. 66 (2017). Flat d-vectors stay torch tensors; m x m matrices are Eigen (float64).
#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/trust_region.hpp"

namespace ddtrain {

namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::MatrixXd to_eigen_matrix(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return Eigen::Map<const RowMajor>(c.data_ptr<double>(), c.size(0), c.size(1));
}

Eigen::VectorXd to_eigen_vector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return Eigen::Map<const Eigen::VectorXd>(c.data_ptr<double>(), c.numel());
}

torch::Tensor to_tensor(const Eigen::VectorXd& v, const torch::TensorOptions& options) {
  torch::Tensor t = torch::empty({v.size()}, torch::kFloat64);
  std::copy(v.data(), v.data() + v.size(), t.data_ptr<double>());
  return t.to(options);
}

double dot64(const torch::Tensor& a, const torch::Tensor& b) { return a.dot(b).item<double>(); }

/// Relative size below which a spectral quantity counts as rounding noise of the flat dtype.
double noise_level(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat64 ? 1e-12 : 1e-5;
}

constexpr double kConditionTolerance = 1e-10;  // reciprocal condition bound for M^{-1}

}  // namespace

/// The compact factorisation B = gamma I + P diag(theta) P^T, P = psi^T W orthonormal (d x r).
struct Lsr1Model::Factors {
  int used = 0;                 // newest pairs in the factorisation
  torch::Tensor psi;            // [used, d]: rows psi_j = y_j - gamma s_j
  Eigen::MatrixXd W;            // used x r
  Eigen::VectorXd theta;        // r eigenvalues of Psi M Psi^T on span(P), ascending
  int rank() const { return static_cast<int>(theta.size()); }

  /// P^T v (r entries).
  Eigen::VectorXd project(const torch::Tensor& v) const {
    if (rank() == 0) return Eigen::VectorXd();
    return W.transpose() * to_eigen_vector(psi.mv(v));
  }
  /// P c as a flat tensor like `like`.
  torch::Tensor expand(const Eigen::VectorXd& c, const torch::Tensor& like) const {
    if (rank() == 0) return torch::zeros_like(like);
    Eigen::VectorXd coefficients = W * c;
    return psi.t().mv(to_tensor(coefficients, like.options()));
  }
};

Lsr1Model::Lsr1Model(int capacity, double tolerance) : capacity_(capacity), tolerance_(tolerance) {
  DDTRAIN_CHECK(capacity >= 1, InvalidArgument, "--tr-memory must be >= 1, got ", capacity);
  DDTRAIN_CHECK(tolerance >= 0 && tolerance < 1, InvalidArgument,
                "SR1 tolerance must be in [0, 1)");
}
Lsr1Model::Lsr1Model(const Lsr1Model& other)
    : capacity_(other.capacity_), tolerance_(other.tolerance_), gamma_(other.gamma_),
      skipped_(other.skipped_), s_(other.s_), y_(other.y_) {}
Lsr1Model& Lsr1Model::operator=(const Lsr1Model& other) {
  if (this != &other) {
    capacity_ = other.capacity_;
    tolerance_ = other.tolerance_;
    gamma_ = other.gamma_;
    skipped_ = other.skipped_;
    s_ = other.s_;
    y_ = other.y_;
    factors_.reset();
  }
  return *this;
}
Lsr1Model::~Lsr1Model() = default;

void Lsr1Model::reset() {
  s_.clear();
  y_.clear();
  gamma_ = 0;
  factors_.reset();
}

int Lsr1Model::pairs_used() const { return factors().used; }

bool Lsr1Model::push(const torch::Tensor& s, const torch::Tensor& y) {
  const double sn = s.norm().item<double>(), yn = y.norm().item<double>();
  const double sy = dot64(s, y);
  if (!std::isfinite(sn) || !std::isfinite(yn) || !std::isfinite(sy) ||
      !(std::abs(sy) > tolerance_ * sn * yn)) {
    ++skipped_;
    return false;
  }
  torch::Tensor residual = y - multiply(s);  // y - B s with the current B
  const double rs = dot64(residual, s), rn = residual.norm().item<double>();
  if (!(std::abs(rs) > tolerance_ * sn * rn)) {  // also skips when B s = y already
    ++skipped_;
    return false;
  }
  s_.push_back(s.detach().clone());
  y_.push_back(y.detach().clone());
  if (size() > capacity_) {
    s_.erase(s_.begin());
    y_.erase(y_.begin());
  }
  gamma_ = yn * yn / std::abs(sy);
  factors_.reset();
  return true;
}

const Lsr1Model::Factors& Lsr1Model::factors() const {
  if (factors_) return *factors_;
  auto f = std::make_unique<Factors>();
  const int k = size();
  if (k > 0) {
    torch::Tensor S = torch::stack(s_), Y = torch::stack(y_);
    torch::Tensor psi = Y - gamma_ * S;
    // M^{-1}(i, j) = s_max(i,j)' psi_min(i,j)  (= D + L + L^T - gamma S'S without cancellation).
    Eigen::MatrixXd sp = to_eigen_matrix(S.matmul(psi.t()));
    Eigen::MatrixXd m_inverse(k, k);
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j) m_inverse(i, j) = sp(std::max(i, j), std::min(i, j));
    // Leave out the oldest pairs while M^{-1} is numerically singular.
    int first = 0;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> m_eig;
    for (; first < k; ++first) {
      m_eig.compute(m_inverse.bottomRightCorner(k - first, k - first));
      const Eigen::VectorXd e = m_eig.eigenvalues().cwiseAbs();
      if (e.minCoeff() > kConditionTolerance * e.maxCoeff()) break;
    }
    const int used = k - first;
    if (used > 0) {
      f->used = used;
      f->psi = psi.narrow(0, first, used).contiguous();
      // Thin QR from the Gram matrix: Psi = Q R with R = Lambda^{1/2} V^T over the numerically
      // non-zero eigenvalues of Psi^T Psi (rank-deficient Psi handled).
      const Eigen::MatrixXd gram_matrix = to_eigen_matrix(f->psi.matmul(f->psi.t()));
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> gram(gram_matrix);
      const Eigen::VectorXd& g_values = gram.eigenvalues();
      const double cutoff = noise_level(psi) * std::max(g_values.maxCoeff(), 0.0);
      std::vector<int> keep;
      for (int i = 0; i < used; ++i)
        if (g_values(i) > cutoff && g_values(i) > 0) keep.push_back(i);
      const int r = static_cast<int>(keep.size());
      if (r > 0) {
        Eigen::MatrixXd v_scaled(used, r), R(r, used);  // V Lambda^{-1/2}, Lambda^{1/2} V^T
        for (int c = 0; c < r; ++c) {
          const double root = std::sqrt(g_values(keep[c]));
          v_scaled.col(c) = gram.eigenvectors().col(keep[c]) / root;
          R.row(c) = gram.eigenvectors().col(keep[c]).transpose() * root;
        }
        const Eigen::VectorXd inv_e = m_eig.eigenvalues().cwiseInverse();
        const Eigen::MatrixXd M = m_eig.eigenvectors() * inv_e.asDiagonal() *
                                  m_eig.eigenvectors().transpose();
        Eigen::MatrixXd T = R * M * R.transpose();
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> t_eig(0.5 * (T + T.transpose()));
        f->theta = t_eig.eigenvalues();
        f->W = v_scaled * t_eig.eigenvectors();
      }
    }
  }
  factors_ = std::move(f);
  return *factors_;
}

torch::Tensor Lsr1Model::multiply(const torch::Tensor& v) const {
  const Factors& f = factors();
  torch::Tensor out = v * gamma_;
  if (f.rank() == 0) return out;
  Eigen::VectorXd a = f.project(v);
  return out + f.expand(f.theta.cwiseProduct(a), v);
}

double Lsr1Model::quadratic(const torch::Tensor& v) const {
  const Factors& f = factors();
  double q = gamma_ * dot64(v, v);
  if (f.rank() == 0) return q;
  Eigen::VectorXd a = f.project(v);
  return q + a.dot(f.theta.cwiseProduct(a));
}

std::vector<double> Lsr1Model::eigenvalues() const {
  const Factors& f = factors();
  std::vector<double> out;
  for (int i = 0; i < f.rank(); ++i) out.push_back(gamma_ + f.theta(i));
  return out;
}

SubproblemSolution Lsr1Model::finish(const torch::Tensor& g, torch::Tensor p, double sigma,
                                     bool boundary, bool hard) const {
  SubproblemSolution out;
  out.predicted = -(dot64(g, p) + 0.5 * quadratic(p));
  out.norm = p.norm().item<double>();
  out.step = std::move(p);
  out.multiplier = sigma;
  out.on_boundary = boundary;
  out.hard_case = hard;
  return out;
}

SubproblemSolution Lsr1Model::solve(const torch::Tensor& g, double radius) const {
  DDTRAIN_CHECK(radius > 0, InvalidArgument, "trust-region radius must be > 0, got ", radius);
  const Factors& f = factors();
  const int r = f.rank();
  const bool has_perp = g.numel() > r;  // gamma is an eigenvalue on the complement of span(P)
  const double g2 = dot64(g, g), gn = std::sqrt(g2);
  const Eigen::VectorXd a = f.project(g);
  // Spectrum of B with the squared components of g: r parallel entries, then the complement.
  std::vector<double> lambda, weight;
  for (int i = 0; i < r; ++i) {
    lambda.push_back(gamma_ + f.theta(i));
    weight.push_back(a(i) * a(i));
  }
  if (has_perp) {
    lambda.push_back(gamma_);
    weight.push_back(std::max(g2 - a.squaredNorm(), 0.0));
  }
  const int n = static_cast<int>(lambda.size());
  const double lambda_min = *std::min_element(lambda.begin(), lambda.end());
  double scale = 1e-300;
  for (double l : lambda) scale = std::max(scale, std::abs(l));

  // Lowest eigenspace; for lambda_min <= 0 (gamma > 0 whenever pairs exist) it lies in span(P).
  std::vector<bool> lowest(n, false);
  double lowest_mass = 0;
  for (int i = 0; i < n; ++i) {
    lowest[i] = lambda[i] <= lambda_min + noise_level(g) * scale;
    if (lowest[i]) lowest_mass += weight[i];
  }
  // Hard case candidate: g has (numerically) no component in the eigenspace of lambda_min <= 0.
  const bool nearly_hard = lambda_min <= 0 && r > 0 && lowest[0] &&
                           std::sqrt(lowest_mass) <= noise_level(g) * gn;
  auto skipped = [&](int i) { return nearly_hard && lowest[i]; };
  auto norm_at = [&](double sigma) {
    double n2 = 0;
    for (int i = 0; i < n; ++i) {
      const double den = lambda[i] + sigma;
      if (!skipped(i) && weight[i] > 0) n2 += weight[i] / (den * den);
    }
    return std::sqrt(n2);
  };
  // p(sigma) = c_perp g + P (c - c_perp a), c_i = -a_i / (lambda_i + sigma).
  auto step_at = [&](double sigma, double tau) {
    const double c_perp = has_perp && !skipped(n - 1) ? -1.0 / (gamma_ + sigma) : 0.0;
    Eigen::VectorXd c = Eigen::VectorXd::Zero(r);
    for (int i = 0; i < r; ++i)
      if (!skipped(i)) c(i) = -a(i) / (lambda[i] + sigma);
    if (tau != 0) c(0) += tau;  // hard case: along the eigenvector of lambda_min
    torch::Tensor p = f.expand(c - c_perp * a, g);
    if (c_perp != 0) p.add_(g, c_perp);
    return p;
  };

  if (gn == 0 && lambda_min >= 0) return finish(g, torch::zeros_like(g), 0, false, false);
  if (lambda_min > 0 && norm_at(0) <= radius) return finish(g, step_at(0, 0), 0, false, false);

  double lo = std::max(0.0, -lambda_min);
  if (nearly_hard) {
    const double n_hat = norm_at(lo);
    if (n_hat <= radius) {  // hard case: p = p_hat + tau z, ||p|| = radius, z ⟂ p_hat
      double tau = std::sqrt(std::max(radius * radius - n_hat * n_hat, 0.0));
      if (r > 0 && a(0) > 0) tau = -tau;  // the sign that does not increase g'p
      return finish(g, step_at(lo, tau), lo, true, true);
    }
  }
  // Secular equation phi(sigma) = 1/||p(sigma)|| - 1/radius = 0 on (lo, hi]: phi is increasing
  // and concave there, so Newton converges; steps leaving the bracket are replaced by bisection.
  double hi = std::max(lo, gn / radius - lambda_min);
  double sigma = hi;
  for (int iteration = 0; iteration < 200; ++iteration) {
    double n2 = 0, d3 = 0;
    for (int i = 0; i < n; ++i) {
      if (skipped(i) || weight[i] == 0) continue;
      const double den = lambda[i] + sigma;
      n2 += weight[i] / (den * den);
      d3 += weight[i] / (den * den * den);
    }
    const double norm = std::sqrt(n2);
    const double phi = 1.0 / norm - 1.0 / radius;
    if (std::abs(norm - radius) <= 1e-14 * radius) break;
    (phi < 0 ? lo : hi) = sigma;
    double next = sigma - phi / (d3 / (norm * n2));
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (!(hi - lo > 1e-16 * hi) || next == sigma) break;
    sigma = next;
  }
  return finish(g, step_at(sigma, 0), sigma, true, false);
}

SubproblemSolution Lsr1Model::dogleg(const torch::Tensor& g, double radius) const {
  DDTRAIN_CHECK(radius > 0, InvalidArgument, "trust-region radius must be > 0, got ", radius);
  const double g2 = dot64(g, g), gn = std::sqrt(g2);
  if (gn == 0) return finish(g, torch::zeros_like(g), 0, false, false);
  const double gbg = quadratic(g);
  const torch::Tensor boundary_step = g * (-radius / gn);
  if (!(gbg > 0) || g2 / gbg * gn >= radius) return finish(g, boundary_step, 0, true, false);
  torch::Tensor cauchy = g * (-g2 / gbg);
  const Factors& f = factors();
  const std::vector<double> lambda = eigenvalues();
  double lambda_min = g.numel() > f.rank() ? gamma_ : std::numeric_limits<double>::infinity();
  for (double l : lambda) lambda_min = std::min(lambda_min, l);
  if (!(lambda_min > 0)) return finish(g, cauchy, 0, false, false);
  // Quasi-Newton point -B^{-1} g in the spectral basis.
  const Eigen::VectorXd a = f.project(g);
  Eigen::VectorXd c(f.rank());
  for (int i = 0; i < f.rank(); ++i) c(i) = -a(i) / lambda[i];
  const double c_perp = g.numel() > f.rank() ? -1.0 / gamma_ : 0.0;
  torch::Tensor newton = f.expand(c - c_perp * a, g);
  if (c_perp != 0) newton.add_(g, c_perp);
  if (newton.norm().item<double>() <= radius) return finish(g, newton, 0, false, false);
  // ||cauchy + tau (newton - cauchy)|| = radius, tau in [0, 1].
  torch::Tensor d = newton - cauchy;
  const double qa = dot64(d, d), qb = 2 * dot64(cauchy, d);
  const double qc = dot64(cauchy, cauchy) - radius * radius;
  const double tau = (-qb + std::sqrt(std::max(qb * qb - 4 * qa * qc, 0.0))) / (2 * qa);
  return finish(g, cauchy.add_(d, tau), 0, true, false);
}

void Lsr1Model::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "gamma", torch::tensor({gamma_}, torch::kFloat64));
  archive.write(prefix + "skipped", torch::tensor({skipped_}, torch::kInt64));
  if (size() > 0) {
    archive.write(prefix + "s", torch::stack(s_));
    archive.write(prefix + "y", torch::stack(y_));
  }
}

void Lsr1Model::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  reset();
  torch::Tensor gamma, skipped, s, y;
  archive.read(prefix + "gamma", gamma);
  archive.read(prefix + "skipped", skipped);
  gamma_ = gamma.item<double>();
  skipped_ = skipped.item<int64_t>();
  if (archive.try_read(prefix + "s", s) && archive.try_read(prefix + "y", y)) {
    for (int64_t i = std::max<int64_t>(0, s.size(0) - capacity_); i < s.size(0); ++i) {
      s_.push_back(s[i].clone());
      y_.push_back(y[i].clone());
    }
  }
}

}  // namespace ddtrain
