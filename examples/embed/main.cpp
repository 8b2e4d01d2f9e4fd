// Embedding ddtrain in your own MPI program: your network, your loss, your data.
//
//   part 1: data-parallel Adam, driven by your own loop of ddtrain::step() calls;
//   part 2: additive preconditioned L-BFGS ("plbfgs") over parameter subdomains given by
//           parameter NAMES, driven by ddtrain::train() with callbacks.
//
// Run:  ./embed_example            (one process)
//       mpirun -np 2 ./embed_example
// Exit status 0 only if both parts reduced the loss by the expected factor and every rank ends
// with the same parameters.
#include <ddtrain/ddtrain.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#if !DDTRAIN_WITH_MPI
#error "this example is an MPI program: build ddtrain with MPI (DDTRAIN_WITH_MPI)"
#endif

namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- your model: custom layers, registered as named children --------------------------------

/// y = tanh(x W^T + b) (or without tanh), Glorot-uniform weights.
struct DenseImpl : torch::nn::Module {
  DenseImpl(int64_t in, int64_t out, bool activate) : activate(activate) {
    const double bound = std::sqrt(6.0 / static_cast<double>(in + out));
    weight = register_parameter("weight", torch::empty({out, in}).uniform_(-bound, bound));
    bias = register_parameter("bias", torch::zeros({out}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = torch::addmm(bias, x, weight.t());
    return activate ? torch::tanh(y) : y;
  }
  bool activate;
  torch::Tensor weight, bias;
};
TORCH_MODULE(Dense);

/// x + tanh(W2 tanh(W1 x + b1) + b2).
struct ResidualImpl : torch::nn::Module {
  explicit ResidualImpl(int64_t width)
      : first(register_module("first", Dense(width, width, true))),
        second(register_module("second", Dense(width, width, true))) {}
  torch::Tensor forward(const torch::Tensor& x) { return x + second(first(x)); }
  Dense first, second;
};
TORCH_MODULE(Residual);

/// 2 -> width -> residual -> residual -> 1. The top-level children ("lift", "block1",
/// "block2", "head") are the layers of ddtrain's layer-wise partition.
struct SurfaceNetImpl : torch::nn::Module {
  explicit SurfaceNetImpl(int64_t width)
      : lift(register_module("lift", Dense(2, width, true))),
        block1(register_module("block1", Residual(width))),
        block2(register_module("block2", Residual(width))),
        head(register_module("head", Dense(width, 1, false))) {}
  torch::Tensor forward(const torch::Tensor& x) { return head(block2(block1(lift(x)))); }
  Dense lift;
  Residual block1, block2;
  Dense head;
};
TORCH_MODULE(SurfaceNet);

// ---- your data and your loss ----------------------------------------------------------------

/// The surface to learn on [-1, 1]^2.
torch::Tensor surface(const torch::Tensor& p) {
  torch::Tensor x = p.select(1, 0), y = p.select(1, 1);
  return (torch::sin(kPi * x) * torch::cos(0.5 * kPi * y) + 0.3 * x * y).unsqueeze(1);
}

/// `total` random points (the same on every rank: same seed), of which this shard keeps every
/// count-th one starting at `index`.
struct Samples {
  torch::Tensor points, values;
};
Samples make_samples(int64_t total, int index, int count) {
  torch::manual_seed(2024);
  torch::Tensor all = torch::rand({total, 2}, torch::kFloat64) * 2 - 1;
  torch::Tensor mine = all.slice(0, index, total, count).contiguous();
  return {mine, surface(mine)};
}

/// Your loss: mean log(cosh(residual)) (smooth, quadratic near 0, linear for outliers).
torch::Tensor log_cosh_sum(const torch::Tensor& prediction, const torch::Tensor& target) {
  torch::Tensor r = prediction - target;
  // log(cosh r) = |r| + log1p(exp(-2|r|)) - log 2, stable for large |r|.
  torch::Tensor a = r.abs();
  return (a + torch::log1p(torch::exp(-2 * a)) - std::log(2.0)).sum();
}

/// Exits non-zero on every rank if `ok` is false on any rank.
bool all_ranks_agree(ddtrain::Communicator& comm, bool ok) {
  return comm.allreduce_sum(ok ? 0.0 : 1.0) == 0.0;
}

/// True if x is bitwise the same on every rank of `comm`.
bool same_on_all_ranks(ddtrain::Communicator& comm, const torch::Tensor& x) {
  torch::Tensor root = x.clone();
  comm.broadcast(root, 0);
  return all_ranks_agree(comm, torch::equal(root, x));
}

constexpr int64_t kSamples = 512;
constexpr int64_t kWidth = 16;

// ---- part 1: data-parallel Adam in your own loop ---------------------------------------------

bool adam_in_a_loop(const ddtrain::CommunicatorPtr& world) {
  const bool root = world->rank() == 0;
  torch::manual_seed(7);  // the same initial network on every rank (rank 0's is broadcast anyway)
  SurfaceNet net(kWidth);
  net->to(torch::kFloat64);
  ddtrain::FlatParameters parameters(*net);  // parameters become views of ONE flat vector

  // This rank's shard; the closure returns the MEAN loss over it, so the distributed objective
  // is told the shard size and combines ranks as sum(n_r L_r) / sum(n_r).
  Samples data = make_samples(kSamples, world->rank(), world->size());
  const double n_local = static_cast<double>(data.points.size(0));
  ddtrain::LocalObjective local(parameters, [&] {
    return log_cosh_sum(net->forward(data.points), data.values) / n_local;
  });
  ddtrain::DistributedObjective objective(local, world, n_local);

  ddtrain::AdamOptions options;
  options.learning_rate = 1e-2;
  ddtrain::Adam adam(options);

  torch::Tensor x = objective.initial_point();
  world->broadcast(x, 0);
  const double initial = objective.loss(x);
  for (int iteration = 1; iteration <= 500; ++iteration) {
    ddtrain::StepSummary step = ddtrain::step(adam, objective, x);  // x updated in place
    if (!std::isfinite(step.loss)) {
      if (root) std::fprintf(stderr, "adam: non-finite loss at iteration %d\n", iteration);
      return false;
    }
    if (root && iteration % 100 == 0) std::printf("adam    iteration %4d  loss %.4e\n", iteration, step.loss);
  }
  objective.commit(x);  // write the result back into the module
  const double final_loss = objective.loss(x);
  if (root) {
    std::printf("adam    loss %.4e -> %.4e (%lld + %lld evaluations)\n", initial, final_loss,
                static_cast<long long>(objective.counters().gradient),
                static_cast<long long>(objective.counters().loss_only));
  }
  const bool decreased = all_ranks_agree(*world, final_loss < initial / 20);
  const bool same = same_on_all_ranks(*world, parameters.values());
  if (root && !decreased) std::fprintf(stderr, "adam: the loss did not decrease 20-fold\n");
  if (root && !same) std::fprintf(stderr, "adam: the ranks ended with different parameters\n");
  return decreased && same;
}

// ---- part 2: preconditioned L-BFGS through train() -------------------------------------------

/// Your model and data as a ddtrain::Problem, so that train() can drive it.
class SurfaceFit final : public ddtrain::Problem {
 public:
  SurfaceFit(ddtrain::Shard shard)
      : net_(make_net()), parameters_(*net_),
        data_(make_samples(kSamples, shard.index, shard.count)) {
    torch::Tensor grid = torch::linspace(-1, 1, 41, torch::kFloat64);
    std::vector<torch::Tensor> mesh = torch::meshgrid({grid, grid}, "ij");
    test_points_ = torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1);
    test_values_ = surface(test_points_);
  }
  std::string name() const override { return "surface_fit"; }
  ddtrain::FlatParameters& parameters() override { return parameters_; }
  torch::nn::Module& model() override { return *net_; }
  bool full_batch() const override { return true; }
  int64_t num_samples() const override { return data_.points.size(0); }
  int64_t global_num_samples() const override { return kSamples; }
  /// Full batch: this shard's SHARE of the global mean loss (divided by the global count).
  torch::Tensor loss(const torch::Tensor& /*indices*/) override {
    return log_cosh_sum(net_->forward(data_.points), data_.values) / static_cast<double>(kSamples);
  }
  /// Relative L2 error on a 41 x 41 grid.
  ddtrain::Metric evaluate() override {
    torch::NoGradGuard no_grad;
    torch::Tensor error = net_->forward(test_points_) - test_values_;
    return {"rel_l2", (error.norm() / test_values_.norm()).item<double>(), false};
  }

 private:
  static SurfaceNet make_net() {
    torch::manual_seed(7);
    SurfaceNet net(kWidth);
    net->to(torch::kFloat64);
    return net;
  }
  SurfaceNet net_;
  ddtrain::FlatParameters parameters_;
  Samples data_;
  torch::Tensor test_points_, test_values_;
};

bool plbfgs_with_train(const ddtrain::CommunicatorPtr& world) {
  const bool root = world->rank() == 0;
  // One rank per group: every rank holds all data and solves the subdomains it owns (s % P).
  ddtrain::Layout layout = ddtrain::make_layout(world, /*data_parallel=*/1);
  SurfaceFit problem({layout.data->rank(), layout.data->size()});

  // Two parameter subdomains, by the module's parameter names.
  std::vector<std::vector<std::string>> groups(2);
  for (const ddtrain::ParameterEntry& entry : problem.parameters().entries()) {
    const bool front = entry.name.rfind("lift.", 0) == 0 || entry.name.rfind("block1.", 0) == 0;
    groups[front ? 0 : 1].push_back(entry.name);
  }
  ddtrain::Partition partition =
      ddtrain::Partition::from_parameter_names(problem.parameters(), groups);
  if (root) std::printf("plbfgs  %s\n", partition.describe().c_str());

  ddtrain::PlbfgsOptions options;
  options.variant = ddtrain::PlbfgsVariant::kAdditive;
  options.local_steps = 10;  // local L-BFGS steps per subdomain solve (also the default)
  ddtrain::Plbfgs solver(options);

  ddtrain::TrainOptions train_options;
  train_options.epochs = 100;       // full batch: one iteration per epoch
  train_options.metric_every = 20;  // rel. L2 error every 20 iterations

  // The loss before training, through the same data-parallel objective train() uses.
  ddtrain::LocalObjective local(problem.parameters(), [&] { return problem.loss({}); });
  ddtrain::DistributedObjective objective(local, layout.data);
  torch::Tensor x0 = problem.parameters().values().clone();
  world->broadcast(x0, 0);
  const double initial = objective.loss(x0);

  ddtrain::Callbacks callbacks;
  callbacks.on_iteration = [&](const ddtrain::IterationSummary& row) {
    if (root && row.iteration % 20 == 0) {
      std::printf("plbfgs  iteration %4lld  loss %.4e  rel_l2 %.3e\n",
                  static_cast<long long>(row.iteration), row.loss, row.metric);
    }
    return true;  // false would stop training (Termination::kUserRequested)
  };

  ddtrain::Summary summary =
      ddtrain::train(problem, solver, train_options, layout, callbacks, &partition);
  if (root) {
    std::printf("plbfgs  loss %.4e -> %.4e, rel_l2 %.3e, %lld iterations, %s\n", initial,
                summary.final_loss, summary.metric, static_cast<long long>(summary.iterations),
                summary.message.c_str());
  }
  const bool succeeded = summary.succeeded();
  const bool decreased = all_ranks_agree(*world, summary.final_loss < initial / 20);
  const bool same = same_on_all_ranks(*world, problem.parameters().values());
  if (root && !succeeded) std::fprintf(stderr, "plbfgs: %s\n", summary.message.c_str());
  if (root && !decreased) std::fprintf(stderr, "plbfgs: the loss did not decrease 20-fold\n");
  if (root && !same) std::fprintf(stderr, "plbfgs: the ranks ended with different parameters\n");
  return succeeded && decreased && same;
}

}  // namespace

int main(int argc, char** argv) {
  // Your MPI program: you initialise MPI and own your communicator.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm mine = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &mine);

  int status = 0;
  {
    try {
      // ddtrain's collectives over YOUR communicator (not freed by ddtrain: you own it).
      ddtrain::CommunicatorPtr world = std::make_shared<ddtrain::MpiComm>(mine);
      const bool adam_ok = adam_in_a_loop(world);
      const bool plbfgs_ok = plbfgs_with_train(world);
      status = adam_ok && plbfgs_ok ? 0 : 1;
      if (world->rank() == 0) std::printf("%s on %d rank(s)\n", status == 0 ? "PASSED" : "FAILED", world->size());
    } catch (const ddtrain::Error& e) {  // ddtrain never prints or exits: it throws
      std::fprintf(stderr, "embed_example: %s\n", e.what());
      MPI_Abort(MPI_COMM_WORLD, 1);  // do not leave the other ranks waiting in a collective
    }
  }  // every ddtrain communicator (including make_layout's splits) is freed before MPI_Finalize

  MPI_Comm_free(&mine);
  MPI_Finalize();
  return status;
}
