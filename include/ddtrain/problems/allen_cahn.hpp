#pragma once
// The Allen–Cahn PINN (the seed experiment of parameter decomposition):
//
//   u_t - nu u_xx + r u^3 - r u = 0,   x in [-1, 1] periodic,  t in [0, 1],
//   u(x, 0) = x^2 cos(pi x),           nu = 1e-4, r = 5 by default.
//
// The network is trained on the squared PDE residual at collocation points; the initial and
// periodic boundary conditions are either built into the output (hard) or added as weighted
// loss terms (soft):
//   hard: u(x, t) = x^2 cos(pi x) e^{-c t} + t N(cos(k pi x), sin(k pi x) for k = 1..K, t)
//                                                                  (exact IC, periodic values)
//   soft: u(x, t) = N(x, t),  loss = mean r^2 + w_ic mean (u(x, 0) - u_0)^2
//                 + w_bc [mean (u(-1, t) - u(1, t))^2 + mean (u_x(-1, t) - u_x(1, t))^2].
// The metric is the relative L2 error on the reference grid (512 x 201 by default).
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "ddtrain/models/taylor.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/problems/allen_cahn_fused.hpp"
#include "ddtrain/problems/pinn_network.hpp"
#include "ddtrain/problems/pinn_sampling.hpp"
#include "ddtrain/reference/allen_cahn_reference.hpp"

namespace ddtrain {

enum class Constraints {
  kHard,  ///< "hard": IC and periodicity built into the output
  kSoft,  ///< "soft": IC and periodic BC as weighted loss terms
};
Constraints parse_constraints(const std::string& name);  // throws InvalidArgument
std::string to_string(Constraints constraints);

/// How the residual's input derivatives u_x, u_t, u_xx are computed.
enum class Derivatives {
  kAuto,      ///< "auto": fused where it applies (AllenCahnOptions::why_not_fused), else taylor
  kFused,     ///< "fused": Taylor mode with a hand-written, cache-blocked backward (allen_cahn_fused.hpp)
  kTaylor,    ///< "taylor": forward Taylor mode, one stacked pass (ddtrain/models/taylor.hpp)
  kAutograd,  ///< "autograd": nested reverse mode (torch::autograd::grad, create_graph)
};
Derivatives parse_derivatives(const std::string& name);  // throws InvalidArgument
std::string to_string(Derivatives derivatives);

struct AllenCahnOptions {
  // ---- the equation
  double diffusion = 1e-4;  ///< --diffusion: nu, >= 0 (the reference is solved with it)
  double reaction = 5.0;    ///< r in r u^3 - r u, >= 0

  // ---- training points (counts per shard or in total, see --scaling)
  int64_t nf = 10000;  ///< --nf: residual (collocation) points in [-1, 1] x [0, 1]
  int64_t n0 = 256;    ///< --n0: initial points x in [-1, 1] (soft constraints only)
  int64_t nb = 256;    ///< --nb: boundary pairs (-1, t), (1, t) (soft constraints only)
  SamplingMethod sampling = SamplingMethod::kUniform;  ///< --sampling uniform|lhs|grid
  Scaling scaling = Scaling::kStrong;  ///< --scaling: strong = the serial point set split over
                                       ///< shards (same problem for any rank count)
  /// --blocks B: the point set cut into B fixed blocks (balanced slices of the serial set),
  /// each evaluated on its own and added in block order on every rank, so any number of ranks
  /// <= B and any thread count give the same losses and parameters bit for bit (also the
  /// global stage of preconditioned L-BFGS spread over its groups). The soft-constraint terms
  /// belong to block 0. 0 = one piece per rank (the default). Needs scaling strong and no causal
  /// weights (they depend on all points of a shard).
  int64_t blocks = 0;
  int64_t resample_every = 0;  ///< --resample-every: new random points every k epochs; 0 = never
  /// --time-marching S: a curriculum in t. Stage s = 1..S trains on residual points in
  /// [-1, 1] x [0, s/S] (drawn anew, as --sampling says, in that box at every stage change);
  /// each stage lasts --stage-epochs epochs, after stage S the whole domain. 0 = off.
  int64_t time_marching_stages = 0;
  int64_t stage_epochs = 100;  ///< --stage-epochs: epochs per time-marching stage, >= 1
  /// --rad-every K: residual-based adaptive distribution (RAD; Wu, Zhu, Tan, Kartha & Lu 2023).
  /// Every K epochs, `rad_candidates` uniform points of the current box are scored with
  /// p = |r|^k / mean(|r|^k) + c at the current parameters and the residual points are drawn
  /// from them with probability proportional to p, without replacement (strong scaling: the
  /// same global draw on every shard, each keeps its slice). 0 = off. A resumed run re-adapts
  /// its points at the resume epoch (the parameters they were drawn with are not kept), so it
  /// continues validly but not bit for bit.
  int64_t rad_every = 0;
  int64_t rad_candidates = 0;  ///< --rad-candidates: candidates per draw, 0 = 10 x the points drawn
  double rad_k = 1.0;          ///< --rad-k: exponent k of |r|, >= 0
  double rad_c = 1.0;          ///< --rad-c: uniform share c, >= 0

  // ---- the loss
  /// --constraints. Hard is the default because it trains better: 300 L-BFGS iterations,
  /// nf = 2000, float32, ResNet 6 x 40 reach rel. L2 0.66 / 0.61 (seeds 0 / 1) with hard
  /// constraints and 0.92 / 1.04 with soft ones (w_ic = 100), and soft iterations cost more.
  Constraints constraints = Constraints::kHard;
  /// --ic-weight: w_ic of the soft initial-condition term, >= 0. 100 was the best of 1, 10, 100
  /// in the comparison above (rel. L2 1.00, 0.95, 0.92).
  double ic_weight = 100.0;
  double bc_weight = 1.0;    ///< --bc-weight: w_bc of the soft periodicity terms, >= 0
  /// --ic-decay c: hard constraints carry the initial condition as u0(x) e^{-c t} instead of
  /// u0(x). u0 = x^2 cos(pi x) has a slope jump of 4 across the periodic boundary x = +-1, which
  /// t N (smooth, periodic) cannot cancel: with c = 0 it stays in u for all t, while the true
  /// solution's corner decays like e^{-2 r t} (u ~ -1 there, f'(-1) = -2r). That corner held the
  /// error at 4e-4 (96 % of it at |x| > 0.97; examples/allen_cahn/README.md); c = 2r = 10 lets
  /// it decay as the solution's does. 0 = the classic form, >= 0.
  double ic_decay = 0.0;
  /// --ic-smoothing: hard constraints carry u0's corner at x = +-1 as the heat equation
  /// u_t = diffusion u_xx rounds it off in time t (u0 + 2 (E|s + sigma Z| - |s|), s the signed
  /// distance to x = +-1, sigma^2 = 2 diffusion t; times e^{-c t} with --ic-decay): exact at
  /// t = 0, smooth for t > 0, so that t N need not build the solution's boundary layer of width
  /// sqrt(diffusion t) there, where the accurate configuration's remaining error sat (99 % of it
  /// at |x| > 0.97, t in [0.05, 0.2]; examples/allen_cahn/README.md).
  bool ic_smoothing = false;
  /// --causal-epsilon: causal training (Wang, Sankaran & Perdikaris 2024). Residual points are
  /// sorted into `causal_bins` equal time bins; bin i's squared residuals are weighted by
  /// w_i = exp(-eps sum_{k<i} L_k), L_k the mean squared residual in bin k (no gradient through
  /// w), so later times count only once earlier ones are resolved. 0 = off.
  /// The weights are computed at the first loss evaluation of each epoch (the solver's current
  /// point) and then frozen for the epoch, so that within an iteration the loss is one smooth
  /// function whose gradient is exact (recomputing them at every line-search trial makes strong
  /// Wolfe searches fail within a few iterations); on_epoch_begin therefore reports a changed
  /// objective every epoch, which costs L-BFGS one extra evaluation per iteration. The L_k are
  /// taken over this shard's points: with several shards the weights are per-shard estimates.
  double causal_epsilon = 0.0;
  int64_t causal_bins = 32;  ///< --causal-bins: time bins of causal weighting, >= 1

  // ---- the network N
  /// --fourier-modes K: hard constraints feed N the periodic features cos(k pi x), sin(k pi x)
  /// for k = 1..K and t (2K + 1 inputs; K = 1 is the classic (cos pi x, sin pi x, t)), so that
  /// u is exactly periodic whatever K. Soft constraints take (x, t): only K = 1 applies there.
  int64_t fourier_modes = 1;
  /// --model resnet|fc|modified-mlp (fc: ddtrain::FullyConnected; modified-mlp: the gated
  /// ddtrain::ModifiedMlp of jaxpi, Taylor/autograd derivatives only)
  PinnModel model = PinnModel::kResNet;
  int64_t depth = 6;                ///< --depth: ResNet units / FC hidden layers
  int64_t width = 40;               ///< --width
  Activation activation = Activation::kTanh;  ///< --activation
  /// --weight-factorization (--factorization-mean, --factorization-std): random weight
  /// factorization of every layer (ddtrain::factorize_weights); Taylor/autograd derivatives only.
  WeightFactorization weight_factorization;

  // ---- how the residual is differentiated
  /// --derivatives auto|fused|taylor|autograd. All give the same residual and loss gradient
  /// (to rounding; tests/unit/test_taylor.cpp). Taylor mode
  /// propagates u, u_x, u_t, u_xx forward through the network in one stacked pass and needs one
  /// backward for the parameter gradient; autograd differentiates the network output twice with
  /// create_graph and then backpropagates through that graph; fused is Taylor mode computed in
  /// cache-sized chunks of points with the backward written out by hand, no autograd graph
  /// (hard constraints, tanh, CPU). auto, the default, is fused where it
  /// applies and taylor elsewhere: fused is the fastest, taylor the next (measured in
  /// bench/RESULTS-allen-cahn.md).
  Derivatives derivatives = Derivatives::kAuto;
  /// Points per chunk of the fused loss (FusedAllenCahnOptions::chunk), >= 1.
  int64_t fused_chunk = FusedAllenCahnOptions{}.chunk;

  // ---- run
  torch::Dtype dtype = torch::kFloat32;  ///< float32 or float64 (parameters and points)
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;  ///< initial parameters (Xavier normal, zero biases) and points
  Shard shard;        ///< this process's share of the points
  /// --reference: MATLAB file with x, tt, uu (AC.mat layout); empty = solve_allen_cahn with
  /// this diffusion and reaction on 512 x 201 (about 0.05 s).
  std::string reference_path;

  std::string validate() const;  ///< "" or a one-line reason naming the field(s)
  /// "" if --derivatives fused supports these options, else why not ("it needs ...").
  std::string why_not_fused() const;
};

/// A field u(xt) of points xt = (n, 2) with columns (x, t), returning (n) or (n, 1) values.
using SpaceTimeFunction = std::function<torch::Tensor(const torch::Tensor& xt)>;

/// The Allen–Cahn residual u_t - nu u_xx + r u^3 - r u at the points xt (n, 2), shape (n), by
/// autograd. If xt does not require grad, a copy that does is used. `create_graph` keeps the
/// graph so the residual can be differentiated again (for a loss gradient).
torch::Tensor allen_cahn_residual(const SpaceTimeFunction& u, const torch::Tensor& xt,
                                  double diffusion, double reaction, bool create_graph = true);

/// The same residual from a jet of u that holds u, u_x, u_t and u_xx (Taylor mode).
torch::Tensor allen_cahn_residual(const SpaceTimeJet& u, double diffusion, double reaction);

/// x^2 cos(pi x), the initial condition.
torch::Tensor allen_cahn_initial_condition(const torch::Tensor& x);

/// ||prediction - reference||_2 / ||reference||_2, computed in float64.
double relative_l2_error(const torch::Tensor& prediction, const torch::Tensor& reference);

class AllenCahnProblem final : public Problem {
 public:
  /// Builds the model, samples the points of options.shard and loads or computes the reference.
  /// Throws InvalidArgument on invalid options, IoError on an unreadable reference file.
  explicit AllenCahnProblem(AllenCahnOptions options);
  /// As above, with a reference field given by the caller (options.reference_path unused).
  AllenCahnProblem(AllenCahnOptions options, reference::ReferenceField reference);

  std::string name() const override { return "allen_cahn"; }
  FlatParameters& parameters() override { return *parameters_; }
  torch::nn::Module& model() override { return *module_; }
  bool full_batch() const override { return true; }
  int64_t num_samples() const override { return residual_points_.size(0); }
  int64_t global_num_samples() const override { return residual_count_; }
  /// This shard's share of the loss (every term's local sum / its global point count).
  torch::Tensor loss(const torch::Tensor& indices) override;
  /// With options().blocks: this shard's blocks of the point set.
  Blocks blocks() const override { return blocks_; }
  /// The residual term of local block `i`'s points, plus the soft-constraint terms in global
  /// block 0.
  torch::Tensor block_loss(int64_t i) override;
  /// The fused loss sums in a fixed order for any thread count (allen_cahn_fused.hpp).
  bool blocks_are_thread_invariant() const override { return derivatives_ == Derivatives::kFused; }
  bool splits_points() const override { return true; }
  /// The residual term of part `part` of `parts` of this shard's residual points (causal
  /// weights from all of them), plus the soft-constraint terms in part 0.
  torch::Tensor part_loss(int64_t part, int64_t parts) override;
  /// Relative L2 error on the reference grid: Metric{"rel_l2", value, false}.
  Metric evaluate() override;
  /// Draws new points when a resampling round or time-marching stage begins (also on resume),
  /// adapts them (RAD) every rad_every epochs and renews the causal weights; true if any of
  /// these happened.
  bool on_epoch_begin(int64_t epoch) override;

  /// u at points xt (n, 2) = (x, t), shape (n), in the problem's dtype, differentiable.
  torch::Tensor predict(const torch::Tensor& xt);
  /// The jet of u at points xt (n, 2): value and u_x always, u_t and u_xx if asked; each of
  /// shape (n), by Taylor mode whatever options().derivatives says. Throws InvalidArgument for
  /// an activation without Taylor-mode derivatives (none of ddtrain::activate's).
  SpaceTimeJet predict_jet(const torch::Tensor& xt, bool with_t = true, bool with_xx = true);
  /// The PDE residual at points xt (n, 2), shape (n), by options().derivatives, differentiable
  /// with respect to the parameters.
  torch::Tensor residual(const torch::Tensor& xt);
  /// Writes x, t, u_ref, u_pred, error = |u_pred - u_ref| on the reference grid (one row per
  /// grid point, header line first) to `path` via `path.tmp` + rename. Throws IoError.
  void write_field_csv(const std::string& path);
  /// field.csv (reference, prediction, error on the reference grid) into `directory`.
  void write_outputs(const std::string& directory) override { write_field_csv(directory + "/field.csv"); }

  const AllenCahnOptions& options() const { return options_; }
  /// The derivatives the loss uses: options().derivatives with auto resolved.
  Derivatives derivatives() const { return derivatives_; }
  const reference::ReferenceField& reference() const { return reference_; }
  /// This shard's residual points (n_local, 2), requiring grad.
  const torch::Tensor& residual_points() const { return residual_points_; }

 private:
  void build_model();
  void sample(int64_t round);
  /// Residual points from RAD round `round` (see AllenCahnOptions::rad_every).
  void adapt_points(int64_t round);
  void set_residual_points(torch::Tensor points);
  /// The t-extent of the residual box at `epoch` (time marching), 1 without.
  double horizon_at(int64_t epoch) const;
  /// The loss on residual points `rows` (all: loss()), with the soft constraints or not.
  torch::Tensor rows_loss(const Range& rows, bool with_constraints);
  torch::Tensor residual_term(const torch::Tensor& squared_residual, const Range& rows);
  /// The residual term of `rows` by the fused loss (with the causal weights, renewed if needed).
  torch::Tensor fused_residual_term(const Range& rows);
  /// Sets causal_weights_ from the squared residuals of ALL points if they are not set for
  /// this epoch (`squared_residual`: of all points, or undefined to compute them).
  void update_causal_weights(const torch::Tensor& squared_residual);
  torch::Tensor soft_constraint_terms();
  /// Prediction on the reference grid (nx * nt, index i + nx * j), float64 CPU, no grad.
  torch::Tensor predict_reference_grid();

  AllenCahnOptions options_;
  reference::ReferenceField reference_;
  std::shared_ptr<torch::nn::Module> module_;
  std::function<torch::Tensor(const torch::Tensor&)> network_;
  std::function<SpaceTimeJet(const SpaceTimeJet&)> network_jet_;  ///< forward_jet of the model
  std::unique_ptr<FlatParameters> parameters_;
  Derivatives derivatives_ = Derivatives::kTaylor;  ///< resolved: fused, taylor or autograd
  std::unique_ptr<FusedAllenCahnLoss> fused_loss_;  ///< set when derivatives_ is fused

  int64_t round_ = 0;  ///< resampling round the current points belong to
  Blocks blocks_;      ///< options().blocks > 0: this shard's blocks
  double horizon_ = 1.0;  ///< residual points lie in [-1, 1] x [0, horizon_]
  bool first_epoch_seen_ = false;  ///< on_epoch_begin was called before (else: start or resume)
  torch::Tensor residual_points_, residual_bins_, residual_bin_counts_;
  torch::Tensor causal_weights_;  ///< per time bin, frozen for the epoch; undefined = recompute
  torch::Tensor initial_points_, initial_values_, boundary_points_;
  int64_t residual_count_ = 0, initial_count_ = 0, boundary_count_ = 0;  ///< global counts
  torch::Tensor reference_points_, reference_values_;
};

}  // namespace ddtrain
