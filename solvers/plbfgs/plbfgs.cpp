#include "ddtrain/solvers/plbfgs.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "ddtrain/error.hpp"
#include "ddtrain/enum_names.hpp"
#include "ddtrain/solvers/data_parallel.hpp"

namespace ddtrain {

// ---- options ----------------------------------------------------------------------------------

namespace {
constexpr NameTable<PlbfgsVariant, 2> kVariantNames{
    {{PlbfgsVariant::kAdditive, "additive"}, {PlbfgsVariant::kMultiplicative, "multiplicative"}}};
constexpr NameTable<LocalSolverType, 4> kLocalSolverNames{{{LocalSolverType::kLbfgs, "lbfgs"},
                                                           {LocalSolverType::kAdam, "adam"},
                                                           {LocalSolverType::kSgd, "sgd"},
                                                           {LocalSolverType::kBfgs, "bfgs"}}};
constexpr NameTable<GlobalSolverType, 2> kGlobalSolverNames{
    {{GlobalSolverType::kLbfgs, "lbfgs"}, {GlobalSolverType::kBfgs, "bfgs"}}};
constexpr NameTable<SecantPair, 2> kSecantPairNames{
    {{SecantPair::kPreconditionedPoints, "preconditioned"}, {SecantPair::kGlobalStep, "global"}}};
constexpr NameTable<CorrectionCombination, 3> kCombinationNames{{{CorrectionCombination::kSum, "sum"},
                                                                 {CorrectionCombination::kSequential, "sequential"},
                                                                 {CorrectionCombination::kWeighted, "weighted"}}};
}  // namespace

PlbfgsVariant parse_plbfgs_variant(const std::string& name) { return parse_name(kVariantNames, name, "--variant"); }
std::string to_string(PlbfgsVariant variant) { return name_of(kVariantNames, variant); }

LocalSolverType parse_local_solver(const std::string& name) {
  return parse_name(kLocalSolverNames, name, "--local-solver");
}
std::string to_string(LocalSolverType type) { return name_of(kLocalSolverNames, type); }

GlobalSolverType parse_global_solver(const std::string& name) {
  return parse_name(kGlobalSolverNames, name, "--global-solver");
}
std::string to_string(GlobalSolverType type) { return name_of(kGlobalSolverNames, type); }

SecantPair parse_secant_pair(const std::string& name) {
  return parse_name(kSecantPairNames, name, "--secant-pair");
}
std::string to_string(SecantPair pair) { return name_of(kSecantPairNames, pair); }

CorrectionCombination parse_combination(const std::string& name) {
  return parse_name(kCombinationNames, name, "--combination");
}
std::string to_string(CorrectionCombination combination) { return name_of(kCombinationNames, combination); }

std::string PlbfgsOptions::validate() const {
  if (local_steps < 1) return "local_steps must be >= 1, got " + std::to_string(local_steps);
  if (local_history < 1) return "local_history must be >= 1, got " + std::to_string(local_history);
  if (!(local_learning_rate >= 0)) return "local_learning_rate must be >= 0 (0: the local solver's default)";
  if (local_solver == LocalSolverType::kBfgs && local_learning_rate != 0)
    return "local_learning_rate does not apply to local_solver bfgs (its first step is scaled, then 1)";
  if (history < 1) return "history must be >= 1, got " + std::to_string(history);
  if (weight_iterations < 1) return "weight_iterations must be >= 1, got " + std::to_string(weight_iterations);
  if (!(gradient_tolerance >= 0)) return "gradient_tolerance must be >= 0";
  if (dense_memory_limit_bytes < 0) return "dense_memory_limit_bytes must be >= 0";
  if (variant == PlbfgsVariant::kMultiplicative && combination != CorrectionCombination::kSum)
    return "combination applies to variant additive only (multiplicative applies each correction in turn)";
  std::string ls = line_search.validate("line_search.");
  if (!ls.empty()) return ls;
  return local_line_search.validate("local_line_search.");
}

void check_plbfgs_options_apply(const PlbfgsOptions& o, const std::function<bool(const std::string&)>& given) {
  const bool dense_local = o.local_solver == LocalSolverType::kBfgs;
  const bool dense_global = o.global_solver == GlobalSolverType::kBfgs;
  DDTRAIN_CHECK(dense_local || !given("local-update"), InvalidArgument,
                "--local-update applies to --local-solver bfgs only");
  DDTRAIN_CHECK(!dense_local || !given("local-history"), InvalidArgument,
                "--local-history applies to --local-solver lbfgs (bfgs keeps a dense matrix)");
  DDTRAIN_CHECK(!dense_local || !given("local-lr"), InvalidArgument,
                "--local-lr does not apply to --local-solver bfgs (its first step is scaled, then 1)");
  DDTRAIN_CHECK(o.variant == PlbfgsVariant::kAdditive || !given("accumulate"), InvalidArgument,
                "--accumulate applies to --variant additive only (the multiplicative sweep "
                "accumulates no corrections)");
  DDTRAIN_CHECK(!dense_global || !given("history"), InvalidArgument,
                "--history applies to --global-solver lbfgs (bfgs keeps a dense matrix)");
  DDTRAIN_CHECK(dense_global || !given("global-update"), InvalidArgument,
                "--global-update applies to --global-solver bfgs only");
  DDTRAIN_CHECK(dense_local || dense_global || !given("dense-memory-limit"), InvalidArgument,
                "--dense-memory-limit applies to plbfgs with --local-solver bfgs or --global-solver bfgs");
}

bool parse_accumulate(const std::string& name) {
  DDTRAIN_CHECK(name == "nonblocking" || name == "blocking", InvalidArgument, "unknown --accumulate '", name,
                "' (accepted: nonblocking, blocking)");
  return name == "nonblocking";
}

bool parse_local_memory_reset(const std::string& name) {
  DDTRAIN_CHECK(name == "keep" || name == "reset", InvalidArgument, "unknown --local-memory '", name,
                "' (accepted: keep, reset)");
  return name == "reset";
}

// ---- building blocks --------------------------------------------------------------------------

/// What one stage (or the whole step) did.
struct Plbfgs::Stage {
  int64_t global_evaluations = 0;  // gradient evaluations of the full objective
  int64_t local_evaluations = 0;   // gradient evaluations of subdomain objectives
  int64_t loss_evaluations = 0;    // loss-only evaluations (any objective)
  bool progress = false;           // the stage decreased the loss
  double step = kNaN;              // line-search step of the stage, if any
  std::string message;             // why it was skipped, if it was
};

/// The corrections of all subdomains, packed: slot s (at offsets[s], partition[s].size()
/// entries) holds R_s c_s. Packing lets one collective carry every c_s separately, which the
/// sequential and weighted combinations need; for a disjoint partition it has d entries, as
/// many as the summed correction.
class Plbfgs::Corrections {
 public:
  Corrections(const Partition& partition, const std::vector<int64_t>& offsets,
              torch::Tensor packed, torch::Tensor inverse_multiplicity)
      : partition_(partition),
        offsets_(offsets),
        packed_(std::move(packed)),
        inverse_multiplicity_(std::move(inverse_multiplicity)) {}

  int size() const { return partition_.size(); }
  torch::Tensor& packed() { return packed_; }
  torch::Tensor slot(int s) const { return packed_.narrow(0, offsets_[s], partition_[s].size()); }
  bool is_zero(int s) const { return !slot(s).any().item<bool>(); }

  /// Σ_s β_s R_sᵀ c_s, weighted by 1/multiplicity where subdomains overlap (β empty = ones).
  torch::Tensor combine(const std::vector<double>& beta = {}) const {
    torch::Tensor full = torch::zeros({partition_.dimension()}, packed_.options());
    for (int s = 0; s < size(); ++s) add_expanded(full, s, beta.empty() ? 1.0 : beta[s]);
    if (inverse_multiplicity_.defined()) full.mul_(inverse_multiplicity_);
    return full;
  }
  /// R_sᵀ c_s (unweighted).
  torch::Tensor expand(int s) const {
    torch::Tensor full = torch::zeros({partition_.dimension()}, packed_.options());
    add_expanded(full, s, 1.0);
    return full;
  }
  /// ∂/∂β_s L(θ + combine(β)) = ĉ_sᵀ g, ĉ_s = R_sᵀ c_s / multiplicity.
  torch::Tensor project(const torch::Tensor& g) const {
    torch::Tensor weighted = inverse_multiplicity_.defined() ? g * inverse_multiplicity_ : g;
    torch::Tensor out = torch::zeros({size()}, g.options());
    for (int s = 0; s < size(); ++s) {
      int64_t offset = offsets_[s];
      torch::Tensor sum = torch::zeros({}, g.options());
      for (const Range& r : partition_[s].ranges) {
        sum += packed_.narrow(0, offset, r.size()).dot(weighted.narrow(0, r.begin, r.size()));
        offset += r.size();
      }
      out[s] = sum;
    }
    return out;
  }

 private:
  void add_expanded(torch::Tensor& full, int s, double scale) const {
    int64_t offset = offsets_[s];
    for (const Range& r : partition_[s].ranges) {
      full.narrow(0, r.begin, r.size()).add_(packed_.narrow(0, offset, r.size()), scale);
      offset += r.size();
    }
  }

  const Partition& partition_;
  const std::vector<int64_t>& offsets_;
  torch::Tensor packed_;
  torch::Tensor inverse_multiplicity_;
};

namespace {


double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

void append(std::string& message, const std::string& part) {
  message += (message.empty() ? "" : "; ") + part;
}

/// φ(β) = L(θ + Σ_s β_s ĉ_s) on R^N (the weighted combination). Remembers the evaluated
/// point of lowest loss with its full gradient, so that choosing it costs no extra evaluation.
class CombinationObjective final : public Objective {
 public:
  using Project = std::function<torch::Tensor(const torch::Tensor&)>;
  using Combine = std::function<torch::Tensor(const std::vector<double>&)>;
  CombinationObjective(Objective& full, const torch::Tensor& base, int n, Combine combine,
                       Project project)
      : full_(full), base_(base), n_(n), combine_(std::move(combine)),
        project_(std::move(project)) {}

  int64_t dimension() const override { return n_; }
  torch::Tensor initial_point() const override { return torch::ones({n_}, base_.options()); }
  double evaluate(const torch::Tensor& beta, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    torch::Tensor b = beta.to(torch::kCPU, torch::kFloat64).contiguous();
    std::vector<double> weights(b.data_ptr<double>(), b.data_ptr<double>() + n_);
    torch::Tensor point = base_ + combine_(weights);
    if (gradient == nullptr) return full_.loss(point);
    torch::Tensor g = torch::empty_like(point);
    const double f = full_.evaluate(point, &g);
    gradient->copy_(project_(g));
    if (std::isfinite(f) && !(f >= best_loss)) {
      best_loss = f;
      best_point = point;
      best_gradient = g;
    }
    return f;
  }

  double best_loss = std::numeric_limits<double>::infinity();
  torch::Tensor best_point, best_gradient;

 private:
  Objective& full_;
  const torch::Tensor& base_;
  int n_;
  Combine combine_;
  Project project_;
};

}  // namespace

// ---- the solver -------------------------------------------------------------------------------

Plbfgs::Plbfgs(PlbfgsOptions options)
    : options_(options),
      memory_(options.history),
      dense_(options.global_update),
      self_(std::make_shared<SelfComm>()) {
  require_valid(options_.validate());
}

Plbfgs::~Plbfgs() = default;

void Plbfgs::reset() {
  memory_.reset();
  dense_ = DenseInverseHessian(options_.global_update);
  previous_curvature_ = torch::Tensor();
  cache_.clear();
  has_previous_ = false;
  previous_step_ = torch::Tensor();
  previous_gradient_ = torch::Tensor();
  iterations_ = 0;
  local_solvers_.clear();
}

Solver& Plbfgs::local_solver(int s) {
  if (static_cast<int>(local_solvers_.size()) <= s) local_solvers_.resize(s + 1);
  std::unique_ptr<Solver>& solver = local_solvers_[s];
  if (solver) return *solver;
  const double lr = options_.local_learning_rate;
  switch (options_.local_solver) {
    case LocalSolverType::kLbfgs: {
      LbfgsOptions o;
      o.history = options_.local_history;
      o.line_search = options_.local_line_search;
      if (lr > 0) o.learning_rate = lr;
      o.gradient_tolerance = options_.gradient_tolerance;
      solver = std::make_unique<Lbfgs>(o);
      break;
    }
    case LocalSolverType::kBfgs: {
      BfgsOptions o;
      o.update = options_.local_update;
      o.line_search = options_.local_line_search;
      o.gradient_tolerance = options_.gradient_tolerance;
      o.memory_limit_bytes = options_.dense_memory_limit_bytes;  // checked in total in prepare()
      solver = std::make_unique<Bfgs>(o);
      break;
    }
    case LocalSolverType::kAdam: {
      AdamOptions o;
      if (lr > 0) o.learning_rate = lr;
      solver = std::make_unique<Adam>(o);
      break;
    }
    case LocalSolverType::kSgd: {
      SgdOptions o;
      if (lr > 0) o.learning_rate = lr;
      solver = std::make_unique<Sgd>(o);
      break;
    }
  }
  return *solver;
}

void Plbfgs::check_context(const StepContext& context, const torch::Tensor& x) const {
  DDTRAIN_CHECK(context.objective != nullptr, InvalidArgument, "plbfgs needs an objective");
  DDTRAIN_CHECK(context.partition != nullptr, InvalidArgument,
                "plbfgs needs a parameter partition (--subdomains / --partition)");
  const int n = context.partition->size();
  DDTRAIN_CHECK(context.partition->dimension() == x.numel(), InvalidArgument,
                "the partition covers ", context.partition->dimension(),
                " parameters but the model has ", x.numel());
  DDTRAIN_CHECK(context.owners >= 1 && context.owner >= 0 && context.owner < context.owners,
                InvalidArgument, "subdomain owner ", context.owner, " outside [0, ",
                context.owners, ")");
  if (options_.variant == PlbfgsVariant::kAdditive) {
    DDTRAIN_CHECK(context.owners <= n, InvalidArgument, "more ranks than subdomains: ",
                  context.owners, " subdomain owners (ranks / --data-parallel) for ", n,
                  " subdomains; use --subdomains >= ", context.owners,
                  " or a larger --data-parallel");
    DDTRAIN_CHECK(context.accumulate_comm != nullptr, InvalidArgument,
                  "plbfgs additive needs an accumulate communicator");
  }
}

void Plbfgs::prepare(const StepContext& context, const torch::Tensor& x) {
  const Partition& partition = *context.partition;
  const bool same = partition_ == &partition && partition_size_ == partition.size() &&
                    (!inverse_multiplicity_.defined() ||
                     inverse_multiplicity_.options().dtype() == x.dtype());
  if (same) return;
  partition_ = &partition;
  partition_size_ = partition.size();
  offsets_.assign(partition.size(), 0);
  packed_size_ = 0;
  for (int s = 0; s < partition.size(); ++s) {
    offsets_[s] = packed_size_;
    packed_size_ += partition[s].size();
  }
  inverse_multiplicity_ = partition.disjoint()
                              ? torch::Tensor()
                              : partition.multiplicity(x.options()).clamp_min(1).reciprocal();
  if (static_cast<int>(local_solvers_.size()) > partition.size()) local_solvers_.clear();
  check_dense_memory(context, x);
}

void Plbfgs::check_dense_memory(const StepContext& context, const torch::Tensor& x) const {
  const bool dense_local = options_.local_solver == LocalSolverType::kBfgs;
  const bool dense_global = options_.global_solver == GlobalSolverType::kBfgs;
  if (!dense_local && !dense_global) return;
  const Partition& partition = *context.partition;
  const int64_t element = static_cast<int64_t>(x.element_size());
  int64_t needed = dense_global ? dense_bytes_needed(x.numel(), element) : 0;
  int blocks = 0;
  for (int s = 0; dense_local && s < partition.size(); ++s) {
    // The multiplicative sweep solves every subdomain on every rank.
    if (options_.variant == PlbfgsVariant::kAdditive && !context.owns_subdomain(s)) continue;
    needed += dense_bytes_needed(partition[s].size(), element);
    ++blocks;
  }
  const int64_t limit = dense_memory_limit_or_default(options_.dense_memory_limit_bytes);
  DDTRAIN_CHECK(needed <= limit, InvalidArgument, "plbfgs: the dense inverse Hessians this rank keeps (",
                dense_local ? std::to_string(blocks) + " subdomain block(s)" : std::string(),
                dense_local && dense_global ? " and " : "",
                dense_global ? "the global one of " + std::to_string(x.numel()) + " parameters" : std::string(),
                ") need ", format_megabytes(needed), " but --dense-memory-limit is ", format_megabytes(limit),
                dense_global ? "; use --global-solver lbfgs" : "",
                dense_local ? std::string(dense_global ? ", " : "; use ") + "more subdomains or --local-solver lbfgs"
                            : std::string());
}

torch::Tensor Plbfgs::solve_local(StepContext& context, int s, const torch::Tensor& x, Stage& stage,
                                  const std::function<void()>& between_steps) {
  SubdomainObjective objective(context.subdomain_objective(), (*context.partition)[s].ranges, x);
  Solver& solver = local_solver(s);
  if (options_.reset_local_memory) solver.reset();
  StepContext local;
  local.objective = &objective;
  local.accumulate_comm = self_;
  local.batch_id = ++local_solves_;
  const torch::Tensor start = objective.initial_point();
  torch::Tensor phi = start.clone();
  for (int i = 0; i < options_.local_steps; ++i) {
    // Converged, no decrease or non-finite: the local solve ends where it is.
    const bool running = solver.step(local, phi).termination == Termination::kRunning;
    if (between_steps) between_steps();
    if (!running) break;
  }
  stage.local_evaluations += objective.counters().gradient;
  stage.loss_evaluations += objective.counters().loss_only;
  return phi - start;
}

Plbfgs::Corrections Plbfgs::gather_corrections(StepContext& context, const torch::Tensor& x,
                                               Stage& stage) {
  prepare(context, x);
  Corrections corrections(*context.partition, offsets_,
                          torch::zeros({packed_size_}, x.options()), inverse_multiplicity_);
  Communicator& comm = *context.accumulate_comm;
  // Each slot is non-zero on exactly one owner, so the sum reproduces it bit for bit, whether
  // the slots travel together or one by one.
  if (!options_.nonblocking_accumulate) {
    for (int s = 0; s < context.partition->size(); ++s) {
      if (context.owns_subdomain(s)) corrections.slot(s).copy_(solve_local(context, s, x, stage));
    }
    comm.accumulate(corrections.packed());
    return corrections;
  }
  // Slot by slot in slot order on every rank (the collectives' order), each started once this
  // rank's part is final; polled between local steps, since MPI progresses only inside calls.
  std::vector<PendingCollectivePtr> pending;
  const auto progress = [&pending] {
    for (PendingCollectivePtr& p : pending) p->test();
  };
  for (int s = 0; s < context.partition->size(); ++s) {
    torch::Tensor slot = corrections.slot(s);
    if (context.owns_subdomain(s)) slot.copy_(solve_local(context, s, x, stage, progress));
    pending.push_back(comm.start_allreduce_sum(slot));
  }
  for (PendingCollectivePtr& p : pending) p->wait();
  return corrections;
}

torch::Tensor Plbfgs::additive_correction(StepContext& context, const torch::Tensor& x,
                                          int64_t* local_evaluations) {
  check_context(context, x);
  Stage stage;
  torch::Tensor c = gather_corrections(context, x, stage).combine();
  if (local_evaluations != nullptr) *local_evaluations = stage.local_evaluations;
  return c;
}

bool Plbfgs::search_along(Objective& objective, torch::Tensor& x, const torch::Tensor& d,
                          double t0, Stage& stage) {
  const double slope = gradient_.dot(d).item<double>();
  if (!(slope < 0)) return false;
  LineSearchResult r = line_search(objective, x, loss_, gradient_, d, t0, options_.line_search);
  stage.global_evaluations += r.evaluations;
  if (!r.decreased) return false;
  x.add_(d, r.step);
  loss_ = r.loss;
  gradient_ = r.gradient;
  stage.step = r.step;
  return true;
}

void Plbfgs::additive_stage(StepContext& context, torch::Tensor& x, Stage& stage) {
  Corrections corrections = gather_corrections(context, x, stage);
  Objective& objective = *context.objective;
  switch (options_.combination) {
    case CorrectionCombination::kSum: {
      stage.progress = search_along(objective, x, corrections.combine(), 1.0, stage);
      if (!stage.progress) stage.message = "preconditioner skipped: no decrease along the correction";
      break;
    }
    case CorrectionCombination::kSequential: {
      int skipped = 0;
      for (int s = 0; s < corrections.size(); ++s) {
        if (corrections.is_zero(s)) continue;
        if (search_along(objective, x, corrections.expand(s), 1.0, stage)) {
          stage.progress = true;
        } else {
          ++skipped;
        }
      }
      if (skipped > 0)
        stage.message = "preconditioner: " + std::to_string(skipped) +
                        " subdomain correction(s) skipped (no decrease)";
      break;
    }
    case CorrectionCombination::kWeighted: {
      const torch::Tensor base = x.clone();
      CombinationObjective phi(
          objective, base, corrections.size(),
          [&](const std::vector<double>& beta) { return corrections.combine(beta); },
          [&](const torch::Tensor& g) { return corrections.project(g); });
      LbfgsOptions o;
      o.history = std::max(1, std::min(options_.history, corrections.size()));
      o.line_search = options_.line_search;
      o.gradient_tolerance = options_.gradient_tolerance;
      Lbfgs weights(o);
      StepContext weight_context;
      weight_context.objective = &phi;
      weight_context.accumulate_comm = self_;
      torch::Tensor beta = phi.initial_point();
      for (int i = 0; i < options_.weight_iterations; ++i) {
        if (weights.step(weight_context, beta).termination != Termination::kRunning) break;
      }
      stage.global_evaluations += phi.counters().gradient;
      stage.loss_evaluations += phi.counters().loss_only;
      if (phi.best_point.defined() && phi.best_loss < loss_) {
        x.copy_(phi.best_point);
        loss_ = phi.best_loss;
        gradient_ = phi.best_gradient;
        stage.progress = true;
      } else {
        stage.message = "preconditioner skipped: no weights decreased the loss";
      }
      break;
    }
  }
}

void Plbfgs::multiplicative_stage(StepContext& context, torch::Tensor& x, Stage& stage) {
  const Partition& partition = *context.partition;
  torch::Tensor theta = x.clone();
  for (int s = 0; s < partition.size(); ++s) {
    torch::Tensor c = solve_local(context, s, theta, stage);
    int64_t offset = 0;
    for (const Range& r : partition[s].ranges) {
      theta.narrow(0, r.begin, r.size()).add_(c.narrow(0, offset, r.size()));
      offset += r.size();
    }
  }
  // g_k at the swept point; also the safeguard for local solvers without a line search
  // (Adam, SGD), whose sweep may increase the loss.
  torch::Tensor g = torch::empty_like(theta);
  const double f = context.objective->evaluate(theta, &g);
  ++stage.global_evaluations;
  if (std::isfinite(f) && f < loss_) {
    x.copy_(theta);
    loss_ = f;
    gradient_ = g;
    stage.progress = true;
    stage.step = 1.0;
  } else {
    stage.message = "preconditioner skipped: the sweep did not decrease the loss";
  }
}

void Plbfgs::push_global_pair(const torch::Tensor& s, const torch::Tensor& y) {
  if (options_.global_solver == GlobalSolverType::kBfgs) {
    dense_.push(s, y, previous_curvature_);
  } else {
    memory_.push(s, y);
  }
}

torch::Tensor Plbfgs::global_direction(const torch::Tensor& g) {
  return options_.global_solver == GlobalSolverType::kBfgs ? dense_.descent_direction(g).direction
                                                           : memory_.descent_direction(g).direction;
}

bool Plbfgs::global_memory_empty() const {
  return options_.global_solver == GlobalSolverType::kBfgs ? dense_.identity() : memory_.size() == 0;
}

void Plbfgs::reset_global_memory() {
  if (options_.global_solver == GlobalSolverType::kBfgs) {
    dense_.reset();
  } else {
    memory_.reset();
  }
}

void Plbfgs::global_stage(StepContext& context, torch::Tensor& x, Stage& stage) {
  if (options_.global_solver == GlobalSolverType::kBfgs)
    dense_.ensure(x, options_.dense_memory_limit_bytes, "--global-solver bfgs");
  // kPreconditionedPoints: the previous global step and the change of the gradient between
  // consecutive preconditioned points (the preconditioner's own move is not part of s).
  if (options_.secant_pair == SecantPair::kPreconditionedPoints && has_previous_ &&
      previous_gradient_.sizes() == gradient_.sizes())
    push_global_pair(previous_step_, gradient_ - previous_gradient_);
  has_previous_ = false;
  previous_gradient_ = gradient_.clone();  // g at θ_{k+½}
  for (int attempt = 0; attempt < 2 && !stage.progress; ++attempt) {
    const torch::Tensor direction = global_direction(gradient_);
    const double t0 =
        global_memory_empty() ? std::min(1.0, 1.0 / gradient_.abs().sum().item<double>()) : 1.0;
    const torch::Tensor before = x.clone();
    stage.progress = search_along(*context.objective, x, direction, t0, stage);
    if (stage.progress) {
      previous_step_ = x - before;
      has_previous_ = true;
      // s = -t H g: B s = -t g, which the self-scaled dense updates need.
      if (options_.global_solver == GlobalSolverType::kBfgs)
        previous_curvature_ = previous_gradient_ * (-stage.step);
      // kGlobalStep: the pair of this step alone, θ_{k+1} − θ_{k+½} and the gradient change
      // along it (both known from the line search; strong Wolfe makes yᵀs > 0).
      if (options_.secant_pair == SecantPair::kGlobalStep)
        push_global_pair(previous_step_, gradient_ - previous_gradient_);
    } else if (!global_memory_empty()) {
      reset_global_memory();  // retry once along scaled steepest descent
    } else {
      break;
    }
  }
  if (!stage.progress) stage.message = "global step skipped: no decrease along the quasi-Newton direction";
}

StepSummary Plbfgs::step(StepContext& context, torch::Tensor& x) {
  check_context(context, x);
  prepare(context, x);
  StepSummary summary;
  Stage total;
  auto finish = [&](Termination termination, std::string message) {
    summary.loss = loss_;
    summary.gradient_norm = gradient_.norm().item<double>();
    summary.gradient_evaluations = total.global_evaluations;
    summary.local_gradient_evaluations = total.local_evaluations;
    summary.loss_evaluations = total.loss_evaluations;
    summary.termination = termination;
    summary.message = std::move(message);
    cache_.store(context.batch_id, x, loss_, gradient_);
    return summary;
  };

  total.global_evaluations += cache_.fetch(context.batch_id, *context.objective, x, loss_, gradient_);
  if (!std::isfinite(loss_)) {
    summary.loss = loss_;
    summary.gradient_evaluations = total.global_evaluations;
    summary.termination = Termination::kNumericalFailure;
    summary.message = "non-finite loss at the current iterate";
    cache_.clear();
    return summary;
  }
  if (max_abs(gradient_) <= options_.gradient_tolerance) {
    summary.step_length = 0;
    return finish(Termination::kConverged, "gradient below tolerance");
  }

  Stage preconditioner;
  if (options_.variant == PlbfgsVariant::kAdditive) {
    additive_stage(context, x, preconditioner);
  } else {
    multiplicative_stage(context, x, preconditioner);
  }
  Stage global;
  const bool converged = max_abs(gradient_) <= options_.gradient_tolerance;
  if (!converged) global_stage(context, x, global);
  ++iterations_;

  for (const Stage* s : {&preconditioner, &global}) {
    total.global_evaluations += s->global_evaluations;
    total.local_evaluations += s->local_evaluations;
    total.loss_evaluations += s->loss_evaluations;
  }
  std::string message;
  append(message, preconditioner.message);
  append(message, global.message);
  summary.step_length = converged ? 0.0 : global.progress ? global.step : 0.0;
  if (converged) return finish(Termination::kConverged, "gradient below tolerance");
  if (!preconditioner.progress && !global.progress)
    return finish(Termination::kLineSearchFailure, message);
  return finish(Termination::kRunning, message);
}

// ---- checkpoints ------------------------------------------------------------------------------

void Plbfgs::save_state(torch::serialize::OutputArchive& archive) const {
  memory_.save(archive, "plbfgs.memory.");
  if (options_.global_solver == GlobalSolverType::kBfgs) {
    dense_.save(archive, "plbfgs.dense.");
    if (previous_curvature_.defined()) archive.write("plbfgs.previous_curvature", previous_curvature_);
  }
  archive.write("plbfgs.iterations", torch::tensor({iterations_}, torch::kInt64));
  if (has_previous_) {
    archive.write("plbfgs.previous_step", previous_step_);
    archive.write("plbfgs.previous_gradient", previous_gradient_);
  }
  if (options_.reset_local_memory) return;
  std::vector<int64_t> saved;
  for (size_t s = 0; s < local_solvers_.size(); ++s) {
    if (!local_solvers_[s]) continue;
    torch::serialize::OutputArchive nested;
    local_solvers_[s]->save_state(nested);
    archive.write("plbfgs.local" + std::to_string(s), nested);
    saved.push_back(static_cast<int64_t>(s));
  }
  archive.write("plbfgs.local_subdomains", torch::tensor(saved, torch::kInt64));
}

void Plbfgs::load_state(torch::serialize::InputArchive& archive) {
  reset();
  memory_.load(archive, "plbfgs.memory.");
  if (options_.global_solver == GlobalSolverType::kBfgs) {
    dense_.load(archive, "plbfgs.dense.");
    torch::Tensor curvature;
    if (archive.try_read("plbfgs.previous_curvature", curvature)) previous_curvature_ = curvature;
  }
  torch::Tensor iterations;
  archive.read("plbfgs.iterations", iterations);
  iterations_ = iterations.item<int64_t>();
  torch::Tensor step, gradient;
  if (archive.try_read("plbfgs.previous_step", step) &&
      archive.try_read("plbfgs.previous_gradient", gradient)) {
    previous_step_ = step;
    previous_gradient_ = gradient;
    has_previous_ = true;
  }
  torch::Tensor saved;
  if (options_.reset_local_memory || !archive.try_read("plbfgs.local_subdomains", saved)) return;
  for (int64_t i = 0; i < saved.numel(); ++i) {
    const int s = static_cast<int>(saved[i].item<int64_t>());
    torch::serialize::InputArchive nested;
    archive.read("plbfgs.local" + std::to_string(s), nested);
    local_solver(s).load_state(nested);
  }
}

std::vector<std::pair<std::string, int64_t>> Plbfgs::counters() const {
  std::vector<std::pair<std::string, int64_t>> all;
  if (options_.global_solver == GlobalSolverType::kBfgs)
    all = {{"skipped_global_updates", dense_.skipped()},
           {"global_restarts", dense_.restarts()},
           {"scaled_global_updates", dense_.scaled()}};
  // The local solvers' counters (e.g. the dense local updates), summed over this rank's subdomains.
  std::map<std::string, int64_t> local;
  for (const auto& solver : local_solvers_)
    if (solver)
      for (const auto& [name, value] : solver->counters()) local["local_" + name] += value;
  all.insert(all.end(), local.begin(), local.end());
  return all;
}

}  // namespace ddtrain
