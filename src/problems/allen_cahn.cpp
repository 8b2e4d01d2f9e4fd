#include "ddtrain/problems/allen_cahn.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ddtrain/error.hpp"
#include "ddtrain/enum_names.hpp"
#include "ddtrain/models.hpp"
#include "ddtrain/problems/pinn_network.hpp"
#include "ddtrain/reference/mat_file.hpp"
#include "allen_cahn_carrier.hpp"

namespace ddtrain {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Independent random streams drawn from the one user seed: three point sets per resampling
// round (stream 3 * round + set), and the initial parameters far away from those.
enum PointSet : uint64_t { kResidualSet = 0, kInitialSet = 1, kBoundarySet = 2, kPointSets = 3 };
constexpr uint64_t kModelStream = 1ULL << 62;
constexpr uint64_t kRadStream = 1ULL << 61;  ///< + 2 * round (+1: the draw among candidates)
constexpr uint64_t kFactorizationStream = (1ULL << 62) + 1;  ///< the log-scales of --weight-factorization

std::string check_positive(int64_t value, const char* field) {
  return value >= 1 ? "" : std::string(field) + " must be >= 1, got " + std::to_string(value);
}

}  // namespace

namespace {
constexpr NameTable<Constraints, 2> kConstraintNames{{{Constraints::kHard, "hard"}, {Constraints::kSoft, "soft"}}};
constexpr NameTable<Derivatives, 4> kDerivativeNames{{{Derivatives::kAuto, "auto"},
                                                      {Derivatives::kFused, "fused"},
                                                      {Derivatives::kTaylor, "taylor"},
                                                      {Derivatives::kAutograd, "autograd"}}};
}  // namespace

Constraints parse_constraints(const std::string& name) {
  return parse_name(kConstraintNames, name, "--constraints");
}
std::string to_string(Constraints constraints) { return name_of(kConstraintNames, constraints); }

Derivatives parse_derivatives(const std::string& name) {
  return parse_name(kDerivativeNames, name, "--derivatives");
}
std::string to_string(Derivatives derivatives) { return name_of(kDerivativeNames, derivatives); }

std::string AllenCahnOptions::why_not_fused() const {
  if (constraints != Constraints::kHard) return "it needs constraints hard";
  if (activation != Activation::kTanh) return "it needs activation tanh";
  if (model != PinnModel::kResNet && model != PinnModel::kFullyConnected) return "it needs model resnet or fc";
  if (weight_factorization.enabled) return "it needs plain weights (no weight_factorization)";
  if (!device.is_cpu()) return "it runs on the CPU only";
  return "";
}

std::string AllenCahnOptions::validate() const {
  if (!(diffusion >= 0) || !std::isfinite(diffusion)) return "diffusion must be finite and >= 0";
  if (!(reaction >= 0) || !std::isfinite(reaction)) return "reaction must be finite and >= 0";
  for (const std::string& e : {check_positive(nf, "nf"), check_positive(n0, "n0"), check_positive(nb, "nb")})
    if (!e.empty()) return e;
  if (!(ic_weight >= 0) || !std::isfinite(ic_weight)) return "ic_weight must be finite and >= 0";
  if (!(bc_weight >= 0) || !std::isfinite(bc_weight)) return "bc_weight must be finite and >= 0";
  if (resample_every < 0) return "resample_every must be >= 0 (0 = never)";
  if (resample_every > 0 && sampling == SamplingMethod::kGrid)
    return "resample_every needs random collocation sets (sampling uniform or lhs), not a grid";
  if (time_marching_stages < 0) return "time_marching_stages must be >= 0 (0 = off)";
  if (std::string e = check_positive(stage_epochs, "stage_epochs"); !e.empty()) return e;
  if (rad_every < 0) return "rad_every must be >= 0 (0 = off)";
  if (rad_every > 0 && resample_every > 0)
    return "rad_every and resample_every both redraw the collocation set: choose one";
  if (rad_candidates < 0) return "rad_candidates must be >= 0 (0 = 10 x nf)";
  if (rad_candidates > 0 && rad_candidates < nf)
    return "rad_candidates " + std::to_string(rad_candidates) + " must be >= nf " + std::to_string(nf) +
           " (the collocation set is drawn from the candidates without replacement)";
  if (!(rad_k >= 0) || !std::isfinite(rad_k)) return "rad_k must be finite and >= 0";
  if (!(rad_c >= 0) || !std::isfinite(rad_c)) return "rad_c must be finite and >= 0";
  if (rad_k == 0 && rad_c == 0) return "rad_k 0 with rad_c 0 gives no distribution";
  if (!(causal_epsilon >= 0) || !std::isfinite(causal_epsilon))
    return "causal_epsilon must be finite and >= 0 (0 = off)";
  if (std::string e = check_positive(causal_bins, "causal_bins"); !e.empty()) return e;
  if (!(ic_decay >= 0) || !std::isfinite(ic_decay)) return "ic_decay must be finite and >= 0";
  if (ic_decay > 0 && constraints != Constraints::kHard)
    return "ic_decay applies to hard constraints (the carrier of the exact initial condition)";
  if (ic_smoothing && constraints != Constraints::kHard)
    return "ic_smoothing applies to hard constraints (the carrier of the exact initial condition)";
  if (fourier_modes < 1 || fourier_modes > 64) return "fourier_modes must be in [1, 64]";
  if (fourier_modes > 1 && constraints != Constraints::kHard)
    return "fourier_modes applies to hard constraints (the soft network takes (x, t))";
  if (std::string e = weight_factorization.validate("weight_factorization."); !e.empty()) return e;
  if (std::string e = check_positive(depth, "depth"); !e.empty()) return e;
  if (std::string e = check_positive(width, "width"); !e.empty()) return e;
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64)
    return "dtype must be float32 or float64 for allen_cahn";
  if (fused_chunk < 1) return "fused_chunk must be >= 1";
  if (derivatives == Derivatives::kFused && !why_not_fused().empty())
    return "derivatives fused: " + why_not_fused() + " (derivatives auto picks taylor then)";
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    return "invalid shard " + std::to_string(shard.index) + " of " + std::to_string(shard.count);
  if (std::string e = check_point_blocks(blocks, scaling, shard, nf); !e.empty()) return e;
  if (blocks > 0 && causal_epsilon > 0)
    return "blocks cannot be combined with causal_epsilon: the causal weights depend on every residual point of a rank";
  return "";
}

torch::Tensor allen_cahn_initial_condition(const torch::Tensor& x) {
  return x * x * torch::cos(kPi * x);
}

torch::Tensor allen_cahn_residual(const SpaceTimeFunction& u, const torch::Tensor& xt,
                                  double diffusion, double reaction, bool create_graph) {
  DDTRAIN_CHECK(xt.dim() == 2 && xt.size(1) == 2, InvalidArgument,
                "residual points must be (n, 2) = (x, t)");
  // Input derivatives need a graph even when the caller (a solver's loss-only trial) turned
  // grad mode off.
  torch::AutoGradMode enable_grad(true);
  const torch::Tensor points = xt.requires_grad() ? xt : xt.detach().requires_grad_(true);
  const torch::Tensor value = u(points).reshape({-1});
  const torch::Tensor du =
      torch::autograd::grad({value}, {points}, {torch::ones_like(value)}, true, true)[0];
  const torch::Tensor u_x = du.select(1, 0);
  const torch::Tensor u_t = du.select(1, 1);
  const torch::Tensor u_xx = torch::autograd::grad({u_x}, {points}, {torch::ones_like(u_x)}, true,
                                                   create_graph)[0].select(1, 0);
  return u_t - diffusion * u_xx + reaction * (value.pow(3) - value);
}

torch::Tensor allen_cahn_residual(const SpaceTimeJet& u, double diffusion, double reaction) {
  DDTRAIN_CHECK(u.value.defined() && u.has_t() && u.has_xx(), InvalidArgument,
                "the Allen–Cahn residual needs a jet with u, u_t and u_xx");
  const torch::Tensor value = u.value.reshape({-1});
  return u.t.reshape({-1}) - diffusion * u.xx.reshape({-1}) +
         reaction * (value.pow(3) - value);
}

double relative_l2_error(const torch::Tensor& prediction, const torch::Tensor& reference) {
  DDTRAIN_CHECK(prediction.numel() == reference.numel(), InvalidArgument,
                "relative_l2_error: ", prediction.numel(), " predicted values for ",
                reference.numel(), " reference values");
  const torch::Tensor ref = reference.detach().reshape({-1}).to(torch::kCPU, torch::kFloat64);
  const torch::Tensor pred = prediction.detach().reshape({-1}).to(torch::kCPU, torch::kFloat64);
  const double norm = ref.norm().item<double>();
  DDTRAIN_CHECK(norm > 0, InvalidArgument, "relative_l2_error: the reference is zero");
  return (pred - ref).norm().item<double>() / norm;
}

// ---- AllenCahnProblem ---------------------------------------------------------------------

namespace {

reference::ReferenceField load_reference(const AllenCahnOptions& options) {
  require_valid(options.validate());
  if (!options.reference_path.empty()) return reference::read_reference_mat(options.reference_path);
  reference::AllenCahnReferenceOptions solve;
  solve.diffusion = options.diffusion;
  solve.reaction = options.reaction;
  return reference::solve_allen_cahn(solve);
}

}  // namespace

AllenCahnProblem::AllenCahnProblem(AllenCahnOptions options)
    : AllenCahnProblem(options, load_reference(options)) {}

AllenCahnProblem::AllenCahnProblem(AllenCahnOptions options, reference::ReferenceField reference)
    : options_(std::move(options)), reference_(std::move(reference)) {
  require_valid(options_.validate());
  // Row k = i + nx * j holds (x_i, t_j), matching the layout of reference_.u.
  reference_points_ = reference_grid_points(reference_, options_.dtype, options_.device);
  reference_values_ = torch::tensor(reference_.u, torch::TensorOptions().dtype(torch::kFloat64));

  blocks_ = point_blocks_of(options_.blocks, options_.shard);
  build_model();
  horizon_ = horizon_at(0);
  sample(0);
}

double AllenCahnProblem::horizon_at(int64_t epoch) const {
  const int64_t stages = options_.time_marching_stages;
  if (stages == 0) return 1.0;
  const int64_t stage = std::min<int64_t>(stages, epoch / options_.stage_epochs + 1);
  return static_cast<double>(stage) / static_cast<double>(stages);
}

void AllenCahnProblem::set_residual_points(torch::Tensor points) {
  residual_points_ = std::move(points).requires_grad_(true);
  if (options_.causal_epsilon > 0) {
    // Bins over the current time extent [0, horizon].
    const int64_t bins = options_.causal_bins;
    residual_bins_ = (residual_points_.detach().select(1, 1) * (bins / horizon_))
                         .floor().to(torch::kLong).clamp(0, bins - 1);
    residual_bin_counts_ = torch::bincount(residual_bins_, {}, bins).to(options_.dtype);
    causal_weights_ = torch::Tensor();
  }
}

void AllenCahnProblem::adapt_points(int64_t round) {
  const bool weak = options_.scaling == Scaling::kWeak;
  const int64_t drawn = weak ? options_.nf : residual_count_;  // points this draw selects
  const int64_t candidates_count = options_.rad_candidates > 0 ? options_.rad_candidates : 10 * drawn;
  // Weak: every shard its own candidates and draw; strong: one global draw, the same everywhere.
  const Shard source = weak ? options_.shard : Shard{};
  const uint64_t stream = kRadStream + 2 * static_cast<uint64_t>(round);
  SamplingOptions sampling{SamplingMethod::kUniform, candidates_count, Scaling::kWeak,
                           mix_seed(options_.seed, stream), source};
  const torch::Tensor candidates =
      sample_points({{-1.0, 0.0}, {1.0, horizon_}}, sampling).points.to(options_.device, options_.dtype);
  std::vector<torch::Tensor> scores;
  {
    torch::NoGradGuard no_grad;  // Taylor mode then builds no graph; autograd builds its own
    constexpr int64_t kChunk = 16384;
    for (const torch::Tensor& chunk : candidates.split(kChunk))
      scores.push_back(residual(chunk).detach().abs().to(torch::kCPU, torch::kFloat64));
  }
  torch::Tensor p = torch::cat(scores).pow(options_.rad_k);
  const double mean = p.mean().item<double>();
  p = (std::isfinite(mean) && mean > 0 ? p / mean : torch::zeros_like(p)) + options_.rad_c;
  p = torch::where(torch::isfinite(p), p, torch::full_like(p, options_.rad_c));
  if (!(p.sum().item<double>() > 0)) p = torch::ones_like(p);  // no information: uniform
  auto generator = at::detail::createCPUGenerator(
      mix_seed(options_.seed, stream + 1) + (weak ? static_cast<uint64_t>(options_.shard.index) : 0));
  torch::Tensor chosen = candidates.index_select(
      0, torch::multinomial(p, drawn, /*replacement=*/false, generator).to(candidates.device()));
  if (!weak) {  // this shard's slice, as sample_points splits (or its blocks)
    const Range mine = shard_rows(drawn, options_.shard, blocks_);
    chosen = chosen.narrow(0, mine.begin, mine.size());
  }
  set_residual_points(chosen.clone());
}

void AllenCahnProblem::build_model() {
  const int64_t inputs = options_.constraints == Constraints::kHard ? 2 * options_.fourier_modes + 1 : 2;
  PinnNetwork network = make_pinn_network(
      PinnNetworkOptions{inputs, options_.model, options_.depth, options_.width, options_.activation,
                         options_.weight_factorization},
      mix_seed(options_.seed, kModelStream), mix_seed(options_.seed, kFactorizationStream), options_.dtype,
      options_.device);
  module_ = network.module;
  network_ = network.forward;
  network_jet_ = network.forward_jet;
  parameters_ = std::make_unique<FlatParameters>(*module_, network.layer_of);
  const std::optional<FusedTanhNetwork>& fused_network = network.fused;

  derivatives_ = options_.derivatives;
  const bool can_fuse = options_.why_not_fused().empty() && fused_network.has_value();
  if (derivatives_ == Derivatives::kAuto) derivatives_ = can_fuse ? Derivatives::kFused : Derivatives::kTaylor;
  DDTRAIN_CHECK(derivatives_ != Derivatives::kFused || can_fuse, InvalidArgument,
                "--derivatives fused does not support this network");
  if (derivatives_ == Derivatives::kFused)
    fused_loss_ = std::make_unique<FusedAllenCahnLoss>(
        *fused_network,
        FusedAllenCahnOptions{options_.diffusion, options_.reaction, options_.fused_chunk, options_.ic_decay,
                              options_.ic_smoothing});
}

void AllenCahnProblem::sample(int64_t round) {
  round_ = round;
  // With blocks the residual points are the rows of this shard's blocks of the serial set and
  // the soft-constraint sets are whole (block 0's terms).
  auto draw = [&](const Box& box, int64_t count, uint64_t set, int64_t& global, const Problem::Blocks& blocks) {
    const uint64_t stream = kPointSets * static_cast<uint64_t>(round) + set;
    SamplingOptions sampling{options_.sampling, count, options_.scaling,
                             mix_seed(options_.seed, stream), options_.shard};
    ShardPoints points = sample_points(box, sampling, blocks);
    global = points.global_count;
    return points.points.to(options_.device, options_.dtype);
  };
  const Problem::Blocks whole = blocks_.total > 0 ? Problem::Blocks{0, 1, 1} : Problem::Blocks{};  // one block: all
  set_residual_points(draw({{-1.0, 0.0}, {1.0, horizon_}}, options_.nf, kResidualSet, residual_count_, blocks_));
  if (options_.constraints == Constraints::kSoft) {
    const torch::Tensor x0 = draw({{-1.0}, {1.0}}, options_.n0, kInitialSet, initial_count_, whole);
    initial_points_ = torch::cat({x0, torch::zeros_like(x0)}, 1);
    initial_values_ = allen_cahn_initial_condition(x0.reshape({-1}));
    const torch::Tensor t = draw({{0.0}, {1.0}}, options_.nb, kBoundarySet, boundary_count_, whole);
    // Rows [0, n) are (-1, t), rows [n, 2n) are (1, t): one forward pass for both sides.
    boundary_points_ = torch::cat({torch::cat({-torch::ones_like(t), t}, 1),
                                   torch::cat({torch::ones_like(t), t}, 1)},
                                  0)
                           .requires_grad_(true);
  }
}

bool AllenCahnProblem::on_epoch_begin(int64_t epoch) {
  bool changed = false;
  const bool resuming = !first_epoch_seen_ && epoch > 0;
  first_epoch_seen_ = true;
  const int64_t round = options_.resample_every > 0 ? epoch / options_.resample_every : 0;
  const double horizon = horizon_at(epoch);
  if (round != round_ || horizon != horizon_) {
    horizon_ = horizon;
    sample(round);
    changed = true;
  }
  if (options_.rad_every > 0 && epoch > 0 && (epoch % options_.rad_every == 0 || resuming || changed)) {
    adapt_points(epoch / options_.rad_every);
    changed = true;
  }
  if (options_.causal_epsilon > 0) {
    causal_weights_ = torch::Tensor();  // renewed by the epoch's first loss evaluation
    changed = true;
  }
  return changed;
}

torch::Tensor AllenCahnProblem::predict(const torch::Tensor& xt) {
  DDTRAIN_CHECK(xt.dim() == 2 && xt.size(1) == 2, InvalidArgument, "predict needs (n, 2) points");
  const torch::Tensor points = xt.to(options_.device, options_.dtype);
  if (options_.constraints == Constraints::kSoft) return network_(points).reshape({-1});
  const torch::Tensor x = points.narrow(1, 0, 1), t = points.narrow(1, 1, 1);
  std::vector<torch::Tensor> features;
  for (int64_t k = 1; k <= options_.fourier_modes; ++k) {
    features.push_back(torch::cos(kPi * k * x));
    features.push_back(torch::sin(kPi * k * x));
  }
  features.push_back(t);
  torch::Tensor carrier = allen_cahn_initial_condition(x);
  if (options_.ic_smoothing) carrier = carrier + detail::smoothed_corner(x, t, options_.diffusion).value;
  if (options_.ic_decay > 0) carrier = carrier * torch::exp(-options_.ic_decay * t);
  return (carrier + t * network_(torch::cat(features, 1))).reshape({-1});
}

SpaceTimeJet AllenCahnProblem::predict_jet(const torch::Tensor& xt, bool with_t, bool with_xx) {
  DDTRAIN_CHECK(xt.dim() == 2 && xt.size(1) == 2, InvalidArgument,
                "predict_jet needs (n, 2) points");
  // The points are data: derivatives with respect to them are propagated, not taped.
  const torch::Tensor points = xt.detach().to(options_.device, options_.dtype);
  if (options_.constraints == Constraints::kSoft) {
    SpaceTimeJet u = network_jet_(coordinate_jet(points, with_t, with_xx));
    for (torch::Tensor* part : {&u.value, &u.x, &u.t, &u.xx})
      if (part->defined()) *part = part->reshape({-1});
    return u;
  }
  // Hard: u = g(x) + t N(cos(pi x), sin(pi x), t) with g = x^2 cos(pi x).
  const torch::Tensor x = points.narrow(1, 0, 1), t = points.narrow(1, 1, 1);
  const torch::Tensor c = torch::cos(kPi * x), s = torch::sin(kPi * x);
  const torch::Tensor zero = torch::zeros_like(x);
  // Features cos(k pi x), sin(k pi x) (k = 1..K), t and their x, t and xx derivatives.
  std::vector<torch::Tensor> value, dx, dt, dxx;
  for (int64_t k = 1; k <= options_.fourier_modes; ++k) {
    const double w = kPi * static_cast<double>(k);
    const torch::Tensor ck = k == 1 ? c : torch::cos(w * x), sk = k == 1 ? s : torch::sin(w * x);
    value.insert(value.end(), {ck, sk});
    dx.insert(dx.end(), {-w * sk, w * ck});
    dt.insert(dt.end(), {zero, zero});
    dxx.insert(dxx.end(), {-w * w * ck, -w * w * sk});
  }
  value.push_back(t);
  dx.push_back(zero);
  dt.push_back(torch::ones_like(x));
  dxx.push_back(zero);
  SpaceTimeJet features;
  features.value = torch::cat(value, 1);
  features.x = torch::cat(dx, 1);
  if (with_t) features.t = torch::cat(dt, 1);
  if (with_xx) features.xx = torch::cat(dxx, 1);
  const SpaceTimeJet n = network_jet_(features);

  SpaceTimeJet u;
  const torch::Tensor x2 = x * x;
  if (options_.ic_smoothing) {  // carrier (u0(x) + smoothed corner(x, t)) e^{-c t}
    const detail::CornerJet<torch::Tensor> k = detail::smoothed_corner(x, t, options_.diffusion);
    const double decay = options_.ic_decay;
    const torch::Tensor e = torch::exp(-decay * t), g = x2 * c + k.value;
    u.value = (g * e + t * n.value).reshape({-1});
    u.x = ((2 * x * c - kPi * x2 * s + k.x) * e + t * n.x).reshape({-1});
    if (with_t) u.t = (n.value + t * n.t + (k.t - decay * g) * e).reshape({-1});
    if (with_xx)
      u.xx = ((2 * c - 4 * kPi * x * s - kPi * kPi * x2 * c + k.xx) * e + t * n.xx).reshape({-1});
    return u;
  }
  if (options_.ic_decay > 0) {  // carrier u0(x) e^{-c t}
    const double decay = options_.ic_decay;
    const torch::Tensor e = torch::exp(-decay * t), u0 = x2 * c;
    u.value = (u0 * e + t * n.value).reshape({-1});
    u.x = ((2 * x * c - kPi * x2 * s) * e + t * n.x).reshape({-1});
    if (with_t) u.t = (n.value + t * n.t - decay * u0 * e).reshape({-1});
    if (with_xx) u.xx = ((2 * c - 4 * kPi * x * s - kPi * kPi * x2 * c) * e + t * n.xx).reshape({-1});
    return u;
  }
  u.value = (x2 * c + t * n.value).reshape({-1});
  u.x = (2 * x * c - kPi * x2 * s + t * n.x).reshape({-1});
  if (with_t) u.t = (n.value + t * n.t).reshape({-1});
  if (with_xx)
    u.xx = (2 * c - 4 * kPi * x * s - kPi * kPi * x2 * c + t * n.xx).reshape({-1});
  return u;
}

torch::Tensor AllenCahnProblem::residual(const torch::Tensor& xt) {
  if (derivatives_ != Derivatives::kAutograd)  // fused: the same residual by Taylor mode
    return allen_cahn_residual(predict_jet(xt), options_.diffusion, options_.reaction);
  return allen_cahn_residual([this](const torch::Tensor& points) { return predict(points); }, xt,
                             options_.diffusion, options_.reaction);
}

void AllenCahnProblem::update_causal_weights(const torch::Tensor& squared_residual) {
  if (causal_weights_.defined()) return;
  // From the detached per-bin mean losses; exclusive cumulative sum: bin 0 has weight 1.
  torch::Tensor r2;
  if (squared_residual.defined()) {
    r2 = squared_residual.detach();
  } else {  // a part is evaluated first: the weights still come from all points
    torch::NoGradGuard no_grad;
    r2 = (derivatives_ == Derivatives::kFused ? fused_loss_->residuals(residual_points_)
                                              : residual(residual_points_))
             .detach()
             .square();
  }
  const torch::Tensor bin_mean =
      torch::zeros({options_.causal_bins}, r2.options()).index_add_(0, residual_bins_, r2) /
      residual_bin_counts_.clamp_min(1);
  causal_weights_ = torch::exp(-options_.causal_epsilon * (bin_mean.cumsum(0) - bin_mean));
}

torch::Tensor AllenCahnProblem::residual_term(const torch::Tensor& squared_residual, const Range& rows) {
  if (options_.causal_epsilon <= 0) return squared_residual.sum() / residual_count_;
  const bool all = rows.size() == residual_points_.size(0);
  update_causal_weights(all ? squared_residual : torch::Tensor());
  return (causal_weights_.index_select(0, rows_of(residual_bins_, rows)) * squared_residual).sum() /
         residual_count_;
}

torch::Tensor AllenCahnProblem::fused_residual_term(const Range& rows) {
  torch::Tensor weights;
  if (options_.causal_epsilon > 0) {
    // The epoch's first evaluation needs the residuals before the weighted pass: one extra
    // forward-only pass per epoch.
    if (!causal_weights_.defined()) update_causal_weights(fused_loss_->residuals(residual_points_).square());
    weights = causal_weights_.index_select(0, rows_of(residual_bins_, rows));
  }
  return (*fused_loss_)(rows_of(residual_points_, rows), 1.0 / static_cast<double>(residual_count_),
                        weights);
}

torch::Tensor AllenCahnProblem::soft_constraint_terms() {
  const torch::Tensor initial = (predict(initial_points_) - initial_values_).square().sum() / initial_count_;
  torch::Tensor u, u_x;
  if (derivatives_ != Derivatives::kAutograd) {
    const SpaceTimeJet jet = predict_jet(boundary_points_, false, false);
    u = jet.value;
    u_x = jet.x;
  } else {
    u = predict(boundary_points_);
    u_x = torch::autograd::grad({u}, {boundary_points_}, {torch::ones_like(u)}, true, true)[0]
              .select(1, 0);
  }
  const int64_t n = boundary_points_.size(0) / 2;
  const torch::Tensor jump = u.narrow(0, 0, n) - u.narrow(0, n, n);
  const torch::Tensor slope_jump = u_x.narrow(0, 0, n) - u_x.narrow(0, n, n);
  const torch::Tensor periodic = (jump.square().sum() + slope_jump.square().sum()) / boundary_count_;
  return options_.ic_weight * initial + options_.bc_weight * periodic;
}

torch::Tensor AllenCahnProblem::loss(const torch::Tensor& indices) {
  DDTRAIN_CHECK(!indices.defined(), InvalidArgument,
                "allen_cahn is a full-batch problem: loss() takes no sample indices");
  return rows_loss({0, residual_points_.size(0)}, holds_constraint_terms(blocks_));
}

torch::Tensor AllenCahnProblem::block_loss(int64_t i) {
  return rows_loss(local_block_rows(i, residual_count_, blocks_), blocks_.first + i == 0);
}

torch::Tensor AllenCahnProblem::part_loss(int64_t part, int64_t parts) {
  return rows_loss(part_rows(residual_points_.size(0), part, parts), part == 0 && holds_constraint_terms(blocks_));
}

torch::Tensor AllenCahnProblem::rows_loss(const Range& rows, bool with_constraints) {
  const bool soft = with_constraints && options_.constraints == Constraints::kSoft;
  if (rows.size() == 0 && !soft) return torch::zeros({}, residual_points_.options().requires_grad(false));
  // Autograd derivatives need a graph even in no-grad mode (see allen_cahn_residual); Taylor
  // mode follows the caller's mode (no graph at all under NoGradGuard).
  if (derivatives_ == Derivatives::kFused) return fused_residual_term(rows);  // hard constraints
  torch::AutoGradMode enable_grad(derivatives_ == Derivatives::kAutograd ||
                                  torch::GradMode::is_enabled());
  torch::Tensor loss;
  if (rows.size() > 0) loss = residual_term(residual(rows_of(residual_points_, rows)).square(), rows);
  if (soft) loss = loss.defined() ? loss + soft_constraint_terms() : soft_constraint_terms();
  return loss;
}

torch::Tensor AllenCahnProblem::predict_reference_grid() {
  return predict_in_chunks([this](const torch::Tensor& points) { return predict(points); }, reference_points_);
}

Metric AllenCahnProblem::evaluate() {
  return Metric{"rel_l2", relative_l2_error(predict_reference_grid(), reference_values_), false};
}

void AllenCahnProblem::write_field_csv(const std::string& path) {
  ddtrain::write_field_csv(path, reference_, predict_reference_grid());
}

}  // namespace ddtrain
