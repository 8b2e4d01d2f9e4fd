#include "ddtrain/problems/pinn_benchmarks.hpp"

#include <cmath>
#include <utility>

#include "ddtrain/error.hpp"
#include "ddtrain/models.hpp"
#include "ddtrain/reference/burgers_reference.hpp"

namespace ddtrain {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Random streams of the one user seed, as AllenCahnProblem draws them.
enum PointSet : uint64_t { kResidualSet = 0, kInitialSet = 1, kBoundarySet = 2 };
constexpr uint64_t kModelStream = 1ULL << 62;
constexpr uint64_t kFactorizationStream = (1ULL << 62) + 1;

std::string check_positive(int64_t value, const char* field) {
  return value >= 1 ? "" : std::string(field) + " must be >= 1, got " + std::to_string(value);
}

std::string check_weight(double value, const char* field) {
  return value >= 0 && std::isfinite(value) ? "" : std::string(field) + " must be finite and >= 0";
}

std::string check_grid(int nx, int nt) {
  if (nx < 2) return "reference_nx must be >= 2, got " + std::to_string(nx);
  if (nt < 2) return "reference_nt must be >= 2, got " + std::to_string(nt);
  return "";
}

template <typename Options>
const Options& validated(const Options& options) {
  require_valid(options.validate());
  return options;
}

}  // namespace

// ---- options ----------------------------------------------------------------------------------

std::string PinnBenchmarkOptions::validate(const std::string& problem) const {
  for (const std::string& e : {check_positive(nf, "nf"), check_positive(n0, "n0"), check_positive(nb, "nb"),
                               check_weight(ic_weight, "ic_weight"), check_weight(bc_weight, "bc_weight"),
                               check_positive(depth, "depth"), check_positive(width, "width")})
    if (!e.empty()) return e;
  if (derivatives == Derivatives::kFused)
    return "derivatives fused is the Allen-Cahn loss only; " + problem + " takes auto, taylor or autograd";
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64)
    return "dtype must be float32 or float64 for " + problem;
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    return "invalid shard " + std::to_string(shard.index) + " of " + std::to_string(shard.count);
  return check_point_blocks(blocks, scaling, shard, nf);
}

std::string BurgersOptions::validate() const {
  if (std::string e = PinnBenchmarkOptions::validate("burgers"); !e.empty()) return e;
  if (!(viscosity > 0) || !std::isfinite(viscosity)) return "viscosity must be finite and > 0";
  if (std::string e = check_grid(reference_nx, reference_nt); !e.empty()) return e;
  reference::BurgersReferenceOptions solve;
  solve.quadrature_nodes = quadrature_nodes;
  return solve.validate();
}

std::string KleinGordonOptions::validate() const {
  if (std::string e = PinnBenchmarkOptions::validate("klein_gordon"); !e.empty()) return e;
  return check_grid(reference_nx, reference_nt);
}

// ---- the equations ----------------------------------------------------------------------------

torch::Tensor burgers_residual(const SpaceTimeFields& u, double viscosity) {
  DDTRAIN_CHECK(u.u.defined() && u.x.defined() && u.t.defined() && u.xx.defined(), InvalidArgument,
                "the Burgers residual needs u, u_x, u_t and u_xx");
  return u.t + u.u * u.x - viscosity * u.xx;
}

torch::Tensor klein_gordon_solution(const torch::Tensor& xt) {
  const torch::Tensor x = xt.select(1, 0), t = xt.select(1, 1);
  return x * torch::cos(5 * kPi * t) + (x * t).pow(3);
}

torch::Tensor klein_gordon_forcing(const torch::Tensor& xt) {
  const torch::Tensor x = xt.select(1, 0), t = xt.select(1, 1);
  const torch::Tensor u_tt = -25 * kPi * kPi * x * torch::cos(5 * kPi * t) + 6 * x.pow(3) * t;
  const torch::Tensor u_xx = 6 * x * t.pow(3);
  return u_tt - u_xx + klein_gordon_solution(xt).pow(3);
}

torch::Tensor klein_gordon_residual(const SpaceTimeFields& u, const torch::Tensor& xt) {
  DDTRAIN_CHECK(u.u.defined() && u.xx.defined() && u.tt.defined(), InvalidArgument,
                "the Klein-Gordon residual needs u, u_xx and u_tt");
  return u.tt - u.xx + u.u.pow(3) - klein_gordon_forcing(xt.detach().to(u.u.dtype()));
}

reference::ReferenceField klein_gordon_reference(int nx, int nt) {
  require_valid(check_grid(nx, nt));
  reference::ReferenceField field;
  for (int i = 0; i < nx; ++i) field.x.push_back(i == nx - 1 ? 1.0 : -1.0 + 2.0 * i / (nx - 1));
  for (int j = 0; j < nt; ++j) field.t.push_back(j == nt - 1 ? 1.0 : static_cast<double>(j) / (nt - 1));
  for (int j = 0; j < nt; ++j)
    for (int i = 0; i < nx; ++i) {
      const double x = field.x[i], t = field.t[j];
      field.u.push_back(x * std::cos(5 * kPi * t) + std::pow(x * t, 3));
    }
  return field;
}

// ---- SpaceTimePinnProblem ---------------------------------------------------------------------

SpaceTimePinnProblem::SpaceTimePinnProblem(const PinnBenchmarkOptions& options, reference::ReferenceField reference)
    : common_(options), reference_(std::move(reference)) {
  reference_points_ = reference_grid_points(reference_, common_.dtype, common_.device);
  reference_values_ = torch::tensor(reference_.u, torch::TensorOptions().dtype(torch::kFloat64));
  network_ = make_pinn_network(
      PinnNetworkOptions{2, common_.model, common_.depth, common_.width, common_.activation, {}},
      mix_seed(common_.seed, kModelStream), mix_seed(common_.seed, kFactorizationStream), common_.dtype,
      common_.device);
  parameters_ = std::make_unique<FlatParameters>(*network_.module, network_.layer_of);
  derivatives_ = common_.derivatives == Derivatives::kAutograd ? Derivatives::kAutograd : Derivatives::kTaylor;

  // With blocks the residual points are the rows of this shard's blocks of the serial set and
  // the soft-constraint sets are whole (block 0's terms).
  blocks_ = point_blocks_of(common_.blocks, common_.shard);
  auto draw = [&](const Box& box, int64_t count, uint64_t set, int64_t& global, const Blocks& blocks) {
    SamplingOptions sampling{common_.sampling, count, common_.scaling, mix_seed(common_.seed, set), common_.shard};
    ShardPoints points = sample_points(box, sampling, blocks);
    global = points.global_count;
    return points.points.to(common_.device, common_.dtype);
  };
  const Blocks whole = blocks_.total > 0 ? Blocks{0, 1, 1} : Blocks{};  // one block: all
  residual_points_ = draw({{-1.0, 0.0}, {1.0, 1.0}}, common_.nf, kResidualSet, residual_count_, blocks_);
  if (common_.constraints == Constraints::kSoft) {
    initial_x_ = draw({{-1.0}, {1.0}}, common_.n0, kInitialSet, initial_count_, whole);
    initial_points_ = torch::cat({initial_x_, torch::zeros_like(initial_x_)}, 1);
    initial_x_ = initial_x_.reshape({-1});
    const torch::Tensor t = draw({{0.0}, {1.0}}, common_.nb, kBoundarySet, boundary_count_, whole);
    // Rows [0, n) are (-1, t), rows [n, 2n) are (1, t): one forward pass for both sides.
    boundary_points_ = torch::cat({torch::cat({-torch::ones_like(t), t}, 1), torch::cat({torch::ones_like(t), t}, 1)}, 0);
  }
}

SpaceTimeFields SpaceTimePinnProblem::network_fields(const torch::Tensor& points, FieldsWanted wanted) {
  SpaceTimeFields n;
  auto flat = [](const torch::Tensor& part) { return part.defined() ? part.reshape({-1}) : part; };
  if (wanted.tt) {  // a pass whose tangent is the t direction: its "x" is N_t, its "xx" N_tt
    SpaceTimeJet along_t;
    along_t.value = points;
    along_t.x = torch::zeros_like(points);
    along_t.x.select(1, 1).fill_(1.0);
    along_t.xx = torch::zeros_like(points);
    const SpaceTimeJet out = network_.forward_jet(along_t);
    n.u = flat(out.value);
    n.t = flat(out.x);
    n.tt = flat(out.xx);
  }
  const bool t_in_x_pass = wanted.t && !wanted.tt;
  if (wanted.x || wanted.xx || t_in_x_pass || !n.u.defined()) {
    const SpaceTimeJet out = network_.forward_jet(coordinate_jet(points, t_in_x_pass, wanted.xx));
    n.u = flat(out.value);
    n.x = flat(out.x);
    if (t_in_x_pass) n.t = flat(out.t);
    n.xx = flat(out.xx);
  }
  return n;
}

torch::Tensor SpaceTimePinnProblem::predict(const torch::Tensor& xt) {
  DDTRAIN_CHECK(xt.dim() == 2 && xt.size(1) == 2, InvalidArgument, "predict needs (n, 2) points");
  const torch::Tensor points = xt.to(common_.device, common_.dtype);
  const torch::Tensor n = network_.forward(points).reshape({-1});
  if (common_.constraints == Constraints::kSoft) return n;
  SpaceTimeFields carrier, factor;
  hard_ansatz(points.select(1, 0), points.select(1, 1), carrier, factor);
  return carrier.u + factor.u * n;
}

SpaceTimeFields SpaceTimePinnProblem::fields(const torch::Tensor& xt, FieldsWanted wanted) {
  DDTRAIN_CHECK(xt.dim() == 2 && xt.size(1) == 2, InvalidArgument, "fields needs (n, 2) points");
  if (derivatives_ == Derivatives::kAutograd) {
    // Input derivatives need a graph even when the caller turned grad mode off.
    torch::AutoGradMode enable_grad(true);
    const torch::Tensor points = xt.detach().to(common_.device, common_.dtype).requires_grad_(true);
    SpaceTimeFields u;
    u.u = predict(points);
    if (!(wanted.x || wanted.t || wanted.xx || wanted.tt)) return u;
    auto d = [&](const torch::Tensor& f) {
      return torch::autograd::grad({f}, {points}, {torch::ones_like(f)}, true, true)[0];
    };
    const torch::Tensor du = d(u.u);
    u.x = du.select(1, 0);
    u.t = du.select(1, 1);
    if (wanted.xx) u.xx = d(u.x).select(1, 0);
    if (wanted.tt) u.tt = d(u.t).select(1, 1);
    return u;
  }
  // Taylor mode; the points are data, their derivatives are propagated, not taped.
  const torch::Tensor points = xt.detach().to(common_.device, common_.dtype);
  const SpaceTimeFields n = network_fields(points, wanted);
  if (common_.constraints == Constraints::kSoft) return n;
  // u = A + B N, by the product rule (second derivatives: A'' + B'' N + 2 B' N' + B N'').
  SpaceTimeFields a, b, u;
  hard_ansatz(points.select(1, 0), points.select(1, 1), a, b);
  u.u = a.u + b.u * n.u;
  if (n.x.defined()) u.x = a.x + b.x * n.u + b.u * n.x;
  if (n.t.defined()) u.t = a.t + b.t * n.u + b.u * n.t;
  if (n.xx.defined()) u.xx = a.xx + b.xx * n.u + 2 * b.x * n.x + b.u * n.xx;
  if (n.tt.defined()) u.tt = a.tt + b.tt * n.u + 2 * b.t * n.t + b.u * n.tt;
  return u;
}

torch::Tensor SpaceTimePinnProblem::residual(const torch::Tensor& xt) {
  return residual_from(fields(xt, residual_needs()), xt.to(common_.device, common_.dtype));
}

torch::Tensor SpaceTimePinnProblem::soft_constraint_terms() {
  torch::Tensor initial;
  if (has_initial_velocity()) {
    const SpaceTimeFields u0 = fields(initial_points_, FieldsWanted{false, true, false, false});
    initial = (u0.u - initial_value(initial_x_)).square().sum() +
              (u0.t - initial_velocity(initial_x_)).square().sum();
  } else {
    initial = (predict(initial_points_) - initial_value(initial_x_)).square().sum();
  }
  const torch::Tensor boundary = (predict(boundary_points_) - boundary_value(boundary_points_)).square().sum();
  return common_.ic_weight * initial / static_cast<double>(initial_count_) +
         common_.bc_weight * boundary / static_cast<double>(2 * boundary_count_);
}

torch::Tensor SpaceTimePinnProblem::loss(const torch::Tensor& indices) {
  DDTRAIN_CHECK(!indices.defined(), InvalidArgument, name(),
                " is a full-batch problem: loss() takes no sample indices");
  return rows_loss({0, residual_points_.size(0)}, holds_constraint_terms(blocks_));
}

torch::Tensor SpaceTimePinnProblem::block_loss(int64_t i) {
  return rows_loss(local_block_rows(i, residual_count_, blocks_), blocks_.first + i == 0);
}

torch::Tensor SpaceTimePinnProblem::part_loss(int64_t part, int64_t parts) {
  return rows_loss(part_rows(residual_points_.size(0), part, parts), part == 0 && holds_constraint_terms(blocks_));
}

torch::Tensor SpaceTimePinnProblem::rows_loss(const Range& rows, bool with_constraints) {
  const bool soft = with_constraints && common_.constraints == Constraints::kSoft;
  if (rows.size() == 0 && !soft) return torch::zeros({}, residual_points_.options().requires_grad(false));
  // Autograd derivatives need a graph even in no-grad mode; Taylor mode follows the caller.
  torch::AutoGradMode enable_grad(derivatives_ == Derivatives::kAutograd || torch::GradMode::is_enabled());
  torch::Tensor loss;
  if (rows.size() > 0)
    loss = residual(rows_of(residual_points_, rows)).square().sum() / static_cast<double>(residual_count_);
  if (soft) loss = loss.defined() ? loss + soft_constraint_terms() : soft_constraint_terms();
  return loss;
}

Metric SpaceTimePinnProblem::evaluate() {
  const torch::Tensor prediction =
      predict_in_chunks([this](const torch::Tensor& points) { return predict(points); }, reference_points_);
  return Metric{"rel_l2", relative_l2_error(prediction, reference_values_), false};
}

void SpaceTimePinnProblem::write_outputs(const std::string& directory) {
  write_field_csv(directory + "/field.csv", reference_,
                  predict_in_chunks([this](const torch::Tensor& points) { return predict(points); }, reference_points_));
}

// ---- Burgers ----------------------------------------------------------------------------------

namespace {
reference::ReferenceField burgers_reference(const BurgersOptions& options) {
  require_valid(options.validate());
  reference::BurgersReferenceOptions solve;
  solve.nx = options.reference_nx;
  solve.nt = options.reference_nt;
  solve.viscosity = options.viscosity;
  solve.quadrature_nodes = options.quadrature_nodes;
  return reference::solve_burgers(solve);
}
}  // namespace

BurgersProblem::BurgersProblem(BurgersOptions options)
    : BurgersProblem(options, burgers_reference(options)) {}

BurgersProblem::BurgersProblem(BurgersOptions options, reference::ReferenceField reference)
    : SpaceTimePinnProblem(validated(options), std::move(reference)), options_(std::move(options)) {}

torch::Tensor BurgersProblem::residual_from(const SpaceTimeFields& u, const torch::Tensor& xt) const {
  (void)xt;
  return burgers_residual(u, options_.viscosity);
}

void BurgersProblem::hard_ansatz(const torch::Tensor& x, const torch::Tensor& t, SpaceTimeFields& a,
                                 SpaceTimeFields& b) const {
  // A = -sin(pi x), B = t (1 - x^2).
  const torch::Tensor s = torch::sin(kPi * x), zero = torch::zeros_like(x);
  a = {-s, -kPi * torch::cos(kPi * x), zero, kPi * kPi * s, zero};
  const torch::Tensor w = 1 - x * x;
  b = {t * w, -2 * x * t, w, -2 * t, zero};
}

torch::Tensor BurgersProblem::initial_value(const torch::Tensor& x) const { return -torch::sin(kPi * x); }

torch::Tensor BurgersProblem::boundary_value(const torch::Tensor& xt) const {
  return torch::zeros({xt.size(0)}, xt.options());
}

// ---- Klein–Gordon -----------------------------------------------------------------------------

KleinGordonProblem::KleinGordonProblem(KleinGordonOptions options)
    : SpaceTimePinnProblem(validated(options), klein_gordon_reference(options.reference_nx, options.reference_nt)),
      options_(std::move(options)) {}

torch::Tensor KleinGordonProblem::residual_from(const SpaceTimeFields& u, const torch::Tensor& xt) const {
  return klein_gordon_residual(u, xt);
}

void KleinGordonProblem::hard_ansatz(const torch::Tensor& x, const torch::Tensor& t, SpaceTimeFields& a,
                                     SpaceTimeFields& b) const {
  // A = x (cos(5 pi t) + t^3), B = t^2 (1 - x^2).
  const double w = 5 * kPi;
  const torch::Tensor c = torch::cos(w * t), g = c + t.pow(3), zero = torch::zeros_like(x);
  a = {x * g, g, x * (-w * torch::sin(w * t) + 3 * t * t), zero, x * (-w * w * c + 6 * t)};
  const torch::Tensor v = 1 - x * x;
  b = {t * t * v, -2 * x * t * t, 2 * t * v, -2 * t * t, 2 * v};
}

torch::Tensor KleinGordonProblem::initial_value(const torch::Tensor& x) const { return x.clone(); }

torch::Tensor KleinGordonProblem::boundary_value(const torch::Tensor& xt) const {
  return klein_gordon_solution(xt);
}

}  // namespace ddtrain
