#pragma once
/// @file
/// Full-matrix (dense inverse-Hessian) quasi-Newton on the flat vector: BFGS and the self-scaled
/// updates of Urbán, Stefanou & Pons (J. Comput. Phys. 2025) — SSBFGS with Oren–Luenberger or
/// Al-Baali scaling, SSBroyden1 and SSBroyden2 — with the strong-Wolfe line search. The formulas
/// are those of ALGORITHMS.md §6 (docs/algorithms.md). H is a d x d matrix of x's dtype on x's
/// device. Under data parallelism every rank owns a share of H's rows (its work is split, and its
/// products are exchanged as exact block tables) and every decision uses allreduced values, so
/// P ranks give the serial iterates to rounding, bit for bit with exact reductions (--blocks).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ddtrain/solver.hpp"
#include "ddtrain/solvers/evaluation_cache.hpp"
#include "ddtrain/solvers/lbfgs_memory.hpp"
#include "ddtrain/solvers/line_search.hpp"

namespace ddtrain {

/// The update rule of the dense inverse Hessian H.
enum class DenseUpdate {
  kBfgs,        ///< "bfgs": plain BFGS, H0 = (s'y / y'y) I at the first update
  kSsbfgsOl,    ///< "ssbfgs-ol": self-scaled BFGS, tau = 1/b (Oren–Luenberger)
  kSsbfgsAb,    ///< "ssbfgs-ab": self-scaled BFGS, tau = min(1, 1/b) (Al-Baali)
  kSsbroyden1,  ///< "ssbroyden1": self-scaled Broyden family, theta of the SR1 side
  kSsbroyden2,  ///< "ssbroyden2": self-scaled Broyden family, theta = max(theta-, min(theta+, (1-b)/b))
};
/// Throws InvalidArgument naming `option` (the command-line option the name came from).
DenseUpdate parse_dense_update(const std::string& name, const std::string& option = "--update");
std::string to_string(DenseUpdate update);

/// Scalars of one update, H <- H / tau + alpha u u' + beta (s u' + u s') + gamma s s' with
/// u = H y: every rule of §6 is a symmetric rank-2 change in span{s, Hy} plus a scaling.
struct DenseUpdateCoefficients {
  double inverse_tau = 1;  ///< 1 / tau
  double alpha = 0;        ///< of u u'
  double beta = 0;         ///< of s u' + u s'
  double gamma = 0;        ///< of s s'
  bool scaled = false;     ///< tau != 1 (self-scaling applied)
};

/// The coefficients of `update` for one pair: ys = y's, yhy = y'Hy, b = s'Bs / y's (computed as
/// -alpha_step s'g / y's), `first` = H is still the identity, d = the parameter count (SSBroyden's
/// sigma tilde). Falls back to the unscaled BFGS update where the rule's scalars are undefined
/// (|a| ~ 0 or b <= 0, see §6).
DenseUpdateCoefficients dense_update_coefficients(DenseUpdate update, double ys, double yhy, double b,
                                                  bool first, int64_t d);

/// The rows of H are cut into kDenseBlocks fixed blocks of row pairs (i, d-1-i: equal work).
/// Products are summed block by block in block order, so their bits depend neither on the
/// thread count nor on how the blocks are spread over ranks.
constexpr int64_t kDenseBlocks = 16;
struct BlockRange {
  int64_t first = 0, last = kDenseBlocks;  ///< blocks [first, last)
};
/// The blocks rank `rank` of `ranks` owns (contiguous; none when ranks > kDenseBlocks for some).
BlockRange dense_blocks_of(int rank, int ranks);

/// H <- H / tau + alpha u u' + beta (s u' + u s') + gamma s s', in one pass over the rows of
/// `blocks`. On the CPU only the upper triangle of H is kept (half the memory traffic; read H
/// through symmetric_products or full_symmetric); each entry is computed alone, so the result
/// does not depend on the thread count. Elsewhere the full matrix is updated (all rows).
void apply_dense_update(torch::Tensor& H, const torch::Tensor& s, const torch::Tensor& u,
                        const DenseUpdateCoefficients& c, BlockRange blocks = {});

/// H v for each v, H symmetric given by its upper triangle (CPU; the full matrix elsewhere):
/// one pass over the triangle for all vectors.
std::vector<torch::Tensor> symmetric_products(const torch::Tensor& H, const std::vector<torch::Tensor>& vectors);
/// The same products as a (kDenseBlocks, k, d) table of per-block partial sums, computed for
/// `blocks` only (zero elsewhere): ranks that own disjoint blocks allreduce the tables exactly
/// (one non-zero contributor per entry) and sum them with sum_product_blocks. CPU only.
torch::Tensor symmetric_product_blocks(const torch::Tensor& H, const std::vector<torch::Tensor>& vectors,
                                       BlockRange blocks);
/// The products of a block table, summed in block order.
std::vector<torch::Tensor> sum_product_blocks(const torch::Tensor& table);

/// The full symmetric matrix of an H kept by its upper triangle.
torch::Tensor full_symmetric(const torch::Tensor& H);

/// The default of BfgsOptions::memory_limit_bytes: a quarter of the physical memory.
int64_t default_dense_memory_limit();
/// The limit a dense memory check applies: `memory_limit_bytes`, or the default where it is 0.
int64_t dense_memory_limit_or_default(int64_t memory_limit_bytes);

struct BfgsOptions {
  BfgsOptions();
  /// Update rule. SSBroyden2 measured best on the Allen–Cahn PINN (examples/allen_cahn/README.md).
  DenseUpdate update = DenseUpdate::kSsbroyden2;
  /// Strong Wolfe (c1 1e-4, c2 0.9, 25 evaluations), zooming until the step no longer changes
  /// x (tolerance_change 1e-16).
  LineSearchOptions line_search;
  double gradient_tolerance = 1e-12;  ///< converged if max|g| <= this
  /// max|s| <= this: converged when the step was along -g, else H restarts from I.
  double step_tolerance = 1e-14;
  /// Skip the update (and count it) when y's <= epsilon |y| |s|.
  double curvature_epsilon = 1e-10;
  /// H (d^2 values of x's dtype) and its work vectors may use at most this many bytes; a larger
  /// network is refused at the first step with the parameter count and the bytes needed.
  /// 0 = default_dense_memory_limit().
  int64_t memory_limit_bytes = 0;
  std::string validate() const;
};

/// Bytes the dense solver needs for d parameters of `element_size` bytes (H and its buffers).
int64_t dense_bytes_needed(int64_t d, int64_t element_size);
/// Bytes as "12.3 MB" (below 1 MB: "0.0123 MB"), as the memory-limit messages write them.
std::string format_megabytes(int64_t bytes);

/// A dense inverse Hessian fed with curvature pairs from outside one line search: the global
/// stage of plbfgs (--global-solver bfgs), whose pairs may span a preconditioner's move. The
/// same update rules and safeguards as Bfgs: a pair with y's <= epsilon |y| |s| is skipped, and
/// a direction that is not a descent direction restarts H from the identity.
class DenseInverseHessian {
 public:
  explicit DenseInverseHessian(DenseUpdate update = DenseUpdate::kSsbroyden2,
                               double curvature_epsilon = 1e-10);
  /// Allocates H = I for x's size, dtype and device (keeps H when they match). Throws
  /// InvalidArgument naming `option` when H needs more than `memory_limit_bytes` (0: the default).
  void ensure(const torch::Tensor& x, int64_t memory_limit_bytes, const std::string& option);
  /// Updates H with the pair (s, y). `Bs` is B s (B = H^-1) where it is known, e.g. -t g for
  /// s = -t H g; undefined, the self-scaled rules make the plain BFGS update. Returns whether H
  /// was updated.
  bool push(const torch::Tensor& s, const torch::Tensor& y, const torch::Tensor& Bs);
  /// -H g and its slope; where that is no descent direction, H restarts from I and -g is returned.
  LbfgsMemory::Direction descent_direction(const torch::Tensor& g);
  void reset();  ///< H = I (keeps the counters)
  bool identity() const { return identity_; }
  int64_t skipped() const { return skipped_; }
  int64_t restarts() const { return restarts_; }
  int64_t scaled() const { return scaled_; }
  const torch::Tensor& matrix() const { return H_; }  ///< upper triangle on the CPU

  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  DenseUpdate update_;
  double epsilon_;
  torch::Tensor H_;
  bool identity_ = true;
  int64_t skipped_ = 0, restarts_ = 0, scaled_ = 0;
};

class Bfgs final : public Solver {
 public:
  explicit Bfgs(BfgsOptions options = {});
  std::string name() const override { return "bfgs"; }
  StepSummary step(StepContext& context, torch::Tensor& x) override;
  void reset() override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

  /// skipped_updates, restarts, scaled_updates, failed_searches.
  std::vector<std::pair<std::string, int64_t>> counters() const override;
  /// The dense inverse Hessian (a full symmetric copy; I before the first step).
  torch::Tensor inverse_hessian() const { return H_.defined() ? full_symmetric(H_) : H_; }
  int64_t skipped_updates() const { return skipped_; }   ///< y's too small: H kept
  int64_t restarts() const { return restarts_; }  ///< H reset to I (no descent direction, vanishing step)
  int64_t failed_searches() const { return failed_searches_; }  ///< retried along -g, H kept
  int64_t scaled_updates() const { return scaled_; }     ///< updates with tau != 1

 private:
  void ensure_inverse_hessian(const torch::Tensor& x);
  /// H v for each v: on the CPU each data-parallel rank works on its own row blocks and the
  /// block tables are allreduced over `comm` (exact), so H's work is split over the ranks.
  std::vector<torch::Tensor> products(const std::vector<torch::Tensor>& vectors, Communicator* comm) const;
  /// This rank's row blocks (all of them without a communicator).
  BlockRange my_blocks(Communicator* comm) const;
  void reset_to_identity(const torch::Tensor& x);

  BfgsOptions options_;
  torch::Tensor H_;       ///< dense inverse Hessian; undefined until the first step
  bool identity_ = true;  ///< H_ is still I (the first update scales it)
  int64_t skipped_ = 0, restarts_ = 0, scaled_ = 0, failed_searches_ = 0, iterations_ = 0;
  EvaluationCache cache_;  ///< loss and gradient at the last step's end
  double loss_ = 0;        ///< at the current x
  torch::Tensor gradient_;
  /// -H g for g = direction_gradient_, from the last update's formula (saves a pass over H).
  torch::Tensor next_direction_, direction_gradient_;
};

}  // namespace ddtrain
