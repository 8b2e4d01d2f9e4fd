#pragma once
// Two PINN benchmarks of Kopaničáková, Kothari, Karniadakis & Krause (SIAM J. Sci. Comput. 2024)
// on x in [-1, 1], t in [0, 1], with the samplers of the Allen–Cahn problem
// (ddtrain/problems/pinn_sampling.hpp) and the relative L2 error on a reference grid as metric:
//
// Burgers (BurgersProblem):  u_t + u u_x - nu u_xx = 0,  nu = 0.01 / pi,
//   u(x, 0) = -sin(pi x),  u(-1, t) = u(1, t) = 0. Reference: the Cole–Hopf solution by
//   Gauss–Hermite quadrature (ddtrain/reference/burgers_reference.hpp), 256 x 101 grid.
//   hard: u = -sin(pi x) + t (1 - x^2) N(x, t)   (exact initial and boundary values)
//   soft: u = N(x, t),  loss = mean r^2 + w_ic mean (u(x, 0) + sin(pi x))^2 + w_bc mean u(+-1, t)^2
//
// Klein–Gordon (KleinGordonProblem), with the manufactured solution of the PINN literature
// (Wang, Teng & Perdikaris 2021, there on x in [0, 1]):
//   u_tt - u_xx + u^3 = f,   u*(x, t) = x cos(5 pi t) + (x t)^3,   f = u*_tt - u*_xx + u*^3,
//   u(x, 0) = x,  u_t(x, 0) = 0,  u(+-1, t) = +-(cos(5 pi t) + t^3). Reference: u* itself.
//   soft (default): u = N(x, t), loss = mean r^2 + w_ic [mean (u(x, 0) - x)^2 + mean u_t(x, 0)^2]
//                                       + w_bc mean (u(+-1, t) - u*(+-1, t))^2
//   hard: u = x (cos(5 pi t) + t^3) + t^2 (1 - x^2) N(x, t). Any carrier that meets the initial and
//   boundary data exactly is this one (the data are linear in x), and it leaves N = -x t to learn:
//   nearly trivial, hence not the default.
//
// The residual's input derivatives come from Taylor mode (ddtrain/models/taylor.hpp; u_tt by a
// second pass whose tangent direction is t) or from nested autograd (--derivatives).
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "ddtrain/problem.hpp"
#include "ddtrain/problems/allen_cahn.hpp"
#include "ddtrain/problems/pinn_network.hpp"
#include "ddtrain/problems/pinn_sampling.hpp"
#include "ddtrain/reference/allen_cahn_reference.hpp"

namespace ddtrain {

/// A field and the derivatives a residual needs at n points, each of shape (n) or undefined.
struct SpaceTimeFields {
  torch::Tensor u;     ///< value
  torch::Tensor x;     ///< u_x
  torch::Tensor t;     ///< u_t
  torch::Tensor xx;    ///< u_xx
  torch::Tensor tt;    ///< u_tt
};

/// Which derivatives to compute.
struct FieldsWanted {
  bool x = false, t = false, xx = false, tt = false;
};

/// The options both benchmark problems share (their defaults differ where noted).
struct PinnBenchmarkOptions {
  // ---- training points (counts per shard or in total, see --scaling)
  int64_t nf = 10000;  ///< --nf: residual (collocation) points in [-1, 1] x [0, 1], >= 1
  int64_t n0 = 256;    ///< --n0: initial points x in [-1, 1] (soft constraints), >= 1
  int64_t nb = 256;    ///< --nb: boundary times t in [0, 1], each at x = -1 and 1 (soft), >= 1
  SamplingMethod sampling = SamplingMethod::kUniform;  ///< --sampling uniform|lhs|grid
  Scaling scaling = Scaling::kStrong;  ///< --scaling: strong = the serial set split over shards
  /// --blocks B: the serial residual set cut into B fixed blocks added in block order, so any
  /// rank count <= B and any thread count give the same bits (AllenCahnOptions::blocks);
  /// soft-constraint terms in block 0. 0 = one piece per rank. Needs scaling strong.
  int64_t blocks = 0;

  // ---- the loss
  Constraints constraints = Constraints::kHard;  ///< --constraints (Klein–Gordon: soft)
  double ic_weight = 1.0;  ///< --ic-weight: w_ic of the soft initial terms, finite, >= 0 (Klein–Gordon: 100)
  double bc_weight = 1.0;  ///< --bc-weight: w_bc of the soft boundary term, finite, >= 0 (Klein–Gordon: 100)

  // ---- the network N(x, t)
  PinnModel model = PinnModel::kResNet;  ///< --model resnet|fc|modified-mlp
  int64_t depth = 4;                ///< --depth: ResNet units / hidden layers, >= 1
  int64_t width = 20;               ///< --width, >= 1
  Activation activation = Activation::kTanh;  ///< --activation
  /// --derivatives auto|taylor|autograd: auto is taylor (no fused loss for these problems).
  Derivatives derivatives = Derivatives::kAuto;

  // ---- run
  torch::Dtype dtype = torch::kFloat32;  ///< float32 or float64
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;  ///< initial parameters and points
  Shard shard;        ///< this process's share of the points

  /// "" or a one-line reason naming the field(s); `problem` names the problem in it.
  std::string validate(const std::string& problem) const;
};

struct BurgersOptions : PinnBenchmarkOptions {
  double viscosity = 0.01 / 3.14159265358979323846;  ///< --viscosity: nu, finite, > 0
  /// Reference grid (--reference-nx, --reference-nt) and quadrature nodes of the Cole–Hopf
  /// reference (ddtrain::reference::BurgersReferenceOptions; defaults 256 x 101, 200 nodes).
  int reference_nx = 256;
  int reference_nt = 101;
  int quadrature_nodes = 200;
  std::string validate() const;  ///< "" or a one-line reason naming the field(s)
};

/// Klein–Gordon trains with soft constraints of weight 100: dense SSBroyden2, float64, ResNet
/// 3 x 20, 1,000 points, 400 iterations reach rel. L2 0.21 / 0.0043 / 0.019 with weights
/// 10 / 100 / 1000 (the residual, of size |f| ~ 25 pi^2, swamps weaker data terms).
struct KleinGordonOptions : PinnBenchmarkOptions {
  KleinGordonOptions() {
    constraints = Constraints::kSoft;
    ic_weight = 100.0;
    bc_weight = 100.0;
  }
  int reference_nx = 256;  ///< --reference-nx: grid points in x of the exact reference, >= 2
  int reference_nt = 101;  ///< --reference-nt: grid times, >= 2
  std::string validate() const;  ///< "" or a one-line reason naming the field(s)
};

/// u_t + u u_x - nu u_xx from fields with u, u_x, u_t and u_xx.
torch::Tensor burgers_residual(const SpaceTimeFields& u, double viscosity);
/// u*(x, t) = x cos(5 pi t) + (x t)^3 at points xt (n, 2), shape (n).
torch::Tensor klein_gordon_solution(const torch::Tensor& xt);
/// f = u*_tt - u*_xx + u*^3 at points xt (n, 2), shape (n).
torch::Tensor klein_gordon_forcing(const torch::Tensor& xt);
/// u_tt - u_xx + u^3 - f(x, t) from fields with u, u_xx and u_tt at the points xt (n, 2).
torch::Tensor klein_gordon_residual(const SpaceTimeFields& u, const torch::Tensor& xt);
/// The exact Klein–Gordon solution on an nx x nt grid of [-1, 1] x [0, 1] (ends included).
reference::ReferenceField klein_gordon_reference(int nx, int nt);

/// What the two benchmarks share: points, network, ansatz, loss, metric, field.csv. A subclass
/// gives the equation (residual, carrier of the hard ansatz, initial and boundary data).
class SpaceTimePinnProblem : public Problem {
 public:
  FlatParameters& parameters() override { return *parameters_; }
  torch::nn::Module& model() override { return *network_.module; }
  bool full_batch() const override { return true; }
  int64_t num_samples() const override { return residual_points_.size(0); }
  int64_t global_num_samples() const override { return residual_count_; }
  /// This shard's share of the loss (every term's local sum / its global point count).
  torch::Tensor loss(const torch::Tensor& indices) override;
  /// With common_options().blocks: this shard's blocks of the residual points.
  Blocks blocks() const override { return blocks_; }
  /// The residual term of local block `i`'s points, plus the soft-constraint terms in global
  /// block 0.
  torch::Tensor block_loss(int64_t i) override;
  bool splits_points() const override { return true; }
  /// The residual term of part `part` of `parts` of this shard's residual points, plus the
  /// soft-constraint terms in part 0.
  torch::Tensor part_loss(int64_t part, int64_t parts) override;
  /// Relative L2 error on the reference grid: Metric{"rel_l2", value, false}.
  Metric evaluate() override;
  /// field.csv (reference, prediction, error on the reference grid) into `directory`.
  void write_outputs(const std::string& directory) override;

  /// u at points xt (n, 2) = (x, t), shape (n), differentiable with respect to the parameters.
  torch::Tensor predict(const torch::Tensor& xt);
  /// u and the wanted derivatives at points xt (n, 2), by the problem's derivatives (Taylor
  /// mode or autograd), differentiable with respect to the parameters.
  SpaceTimeFields fields(const torch::Tensor& xt, FieldsWanted wanted);
  /// The PDE residual at points xt (n, 2), shape (n).
  torch::Tensor residual(const torch::Tensor& xt);

  const PinnBenchmarkOptions& common_options() const { return common_; }
  /// The derivatives the loss uses: taylor or autograd (auto resolved).
  Derivatives derivatives() const { return derivatives_; }
  const reference::ReferenceField& reference() const { return reference_; }
  /// This shard's residual points (n_local, 2).
  const torch::Tensor& residual_points() const { return residual_points_; }

 protected:
  /// Validates `options`, builds the network and samples the points.
  SpaceTimePinnProblem(const PinnBenchmarkOptions& options, reference::ReferenceField reference);

  /// The derivatives the residual needs.
  virtual FieldsWanted residual_needs() const = 0;
  virtual torch::Tensor residual_from(const SpaceTimeFields& u, const torch::Tensor& xt) const = 0;
  /// Hard ansatz u = A + B N: the carrier A and the factor B (vanishing where the data are
  /// given), each with all five fields, at x, t of shape (n).
  virtual void hard_ansatz(const torch::Tensor& x, const torch::Tensor& t, SpaceTimeFields& carrier,
                           SpaceTimeFields& factor) const = 0;
  /// u(x, 0) and, if has_initial_velocity(), u_t(x, 0) for x of shape (n).
  virtual torch::Tensor initial_value(const torch::Tensor& x) const = 0;
  virtual bool has_initial_velocity() const { return false; }
  virtual torch::Tensor initial_velocity(const torch::Tensor& x) const { return torch::zeros_like(x); }
  /// u(x_b, t) at boundary points xt (n, 2) with x_b = +-1.
  virtual torch::Tensor boundary_value(const torch::Tensor& xt) const = 0;

 private:
  SpaceTimeFields network_fields(const torch::Tensor& points, FieldsWanted wanted);
  torch::Tensor soft_constraint_terms();
  /// The loss on residual points `rows` (all: loss()), with the soft constraints or not.
  torch::Tensor rows_loss(const Range& rows, bool with_constraints);

  PinnBenchmarkOptions common_;
  reference::ReferenceField reference_;
  PinnNetwork network_;
  std::unique_ptr<FlatParameters> parameters_;
  Derivatives derivatives_ = Derivatives::kTaylor;
  torch::Tensor residual_points_, initial_points_, initial_x_, boundary_points_;
  int64_t residual_count_ = 0, initial_count_ = 0, boundary_count_ = 0;  ///< global counts
  torch::Tensor reference_points_, reference_values_;
  Blocks blocks_;  ///< common_options().blocks > 0: this shard's blocks
};

class BurgersProblem final : public SpaceTimePinnProblem {
 public:
  /// Computes the Cole–Hopf reference (about 0.1 s on the default grid). Throws InvalidArgument
  /// on invalid options.
  explicit BurgersProblem(BurgersOptions options);
  /// As above with a reference field given by the caller.
  BurgersProblem(BurgersOptions options, reference::ReferenceField reference);
  std::string name() const override { return "burgers"; }
  const BurgersOptions& options() const { return options_; }

 private:
  FieldsWanted residual_needs() const override { return {true, true, true, false}; }
  torch::Tensor residual_from(const SpaceTimeFields& u, const torch::Tensor& xt) const override;
  void hard_ansatz(const torch::Tensor& x, const torch::Tensor& t, SpaceTimeFields& carrier,
                   SpaceTimeFields& factor) const override;
  torch::Tensor initial_value(const torch::Tensor& x) const override;
  torch::Tensor boundary_value(const torch::Tensor& xt) const override;

  BurgersOptions options_;
};

class KleinGordonProblem final : public SpaceTimePinnProblem {
 public:
  /// Throws InvalidArgument on invalid options.
  explicit KleinGordonProblem(KleinGordonOptions options);
  std::string name() const override { return "klein_gordon"; }
  const KleinGordonOptions& options() const { return options_; }

 private:
  FieldsWanted residual_needs() const override { return {false, false, true, true}; }
  torch::Tensor residual_from(const SpaceTimeFields& u, const torch::Tensor& xt) const override;
  void hard_ansatz(const torch::Tensor& x, const torch::Tensor& t, SpaceTimeFields& carrier,
                   SpaceTimeFields& factor) const override;
  torch::Tensor initial_value(const torch::Tensor& x) const override;
  bool has_initial_velocity() const override { return true; }
  torch::Tensor boundary_value(const torch::Tensor& xt) const override;

  KleinGordonOptions options_;
};

}  // namespace ddtrain
