// SAPTS (data subdomains) with one process owning N micro-batches, the first-order-consistent
// local objective, batch growth, and APTS (parameter subdomains) on a separable quadratic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "ddtrain/error.hpp"
#include "ddtrain/solvers/sapts.hpp"

using namespace ddtrain;

namespace {

/// Three-class points in the plane (class = angular sector, some label noise) and a
/// 2-8-3 tanh network in float64.
struct TinyClassifier {
  torch::nn::Sequential model{nullptr};
  std::unique_ptr<FlatParameters> parameters;
  torch::Tensor inputs, labels;

  explicit TinyClassifier(int64_t n, uint64_t seed = 0, torch::Dtype dtype = torch::kFloat64) {
    torch::manual_seed(seed);  // before the layers: their initialisation draws from it
    model = torch::nn::Sequential(torch::nn::Linear(2, 8), torch::nn::Functional(torch::tanh),
                                  torch::nn::Linear(8, 3));
    model->to(dtype);
    parameters = std::make_unique<FlatParameters>(*model);
    inputs = torch::randn({n, 2}, dtype);
    torch::Tensor angle = torch::atan2(inputs.select(1, 1), inputs.select(1, 0)) + M_PI;
    labels = (angle / (2 * M_PI / 3)).floor().clamp(0, 2).to(torch::kLong);
    torch::Tensor flip = torch::rand({n}) < 0.1;
    labels = torch::where(flip, (labels + 1) % 3, labels);
  }
  torch::Tensor loss(const torch::Tensor& indices) {
    return torch::nn::functional::cross_entropy(model->forward(inputs.index_select(0, indices)),
                                                labels.index_select(0, indices));
  }
};

/// The objectives of one mini-batch split into N micro-batches, all owned by this process.
struct MicroBatches {
  std::unique_ptr<LocalObjective> global;
  std::vector<std::unique_ptr<LocalObjective>> micro;
  StepContext context;

  MicroBatches(TinyClassifier& problem, const torch::Tensor& batch, int n) {
    global = std::make_unique<LocalObjective>(*problem.parameters,
                                              [&problem, batch] { return problem.loss(batch); });
    context.objective = global.get();
    context.accumulate_comm = std::make_shared<SelfComm>();
    context.data_comm = std::make_shared<SelfComm>();
    context.num_data_subdomains = n;
    const std::vector<torch::Tensor> parts = batch.chunk(n);
    for (int i = 0; i < n; ++i) {
      torch::Tensor part = parts[i];
      micro.push_back(std::make_unique<LocalObjective>(
          *problem.parameters, [&problem, part] { return problem.loss(part); }));
      context.data_subdomains.push_back(
          {i, micro.back().get(), static_cast<double>(part.numel()) / batch.numel()});
    }
  }
};

}  // namespace

TEST(FirstOrderConsistentObjective, ValueAndGradientAtTheCentre) {
  TinyClassifier problem(40);
  torch::Tensor all = torch::arange(40), part = torch::arange(10);
  LocalObjective global(*problem.parameters, [&] { return problem.loss(all); });
  LocalObjective micro(*problem.parameters, [&] { return problem.loss(part); });
  torch::Tensor x = problem.parameters->values().clone();
  torch::Tensor g = torch::empty_like(x), gi = torch::empty_like(x);
  global.evaluate(x, &g);
  const double fi = micro.evaluate(x, &gi);
  FirstOrderConsistentObjective consistent(micro, x, g);
  EXPECT_DOUBLE_EQ(consistent.value_at_center(), fi);
  torch::Tensor gc = torch::empty_like(x);
  EXPECT_NEAR(consistent.evaluate(x, &gc), fi, 1e-15);
  EXPECT_TRUE(torch::allclose(gc, g, 1e-14, 1e-15));
  // Away from x0: f_i(y) + (g - grad f_i(x0))'(y - x0).
  torch::Tensor y = x + 0.1 * torch::randn_like(x);
  torch::Tensor gy = torch::empty_like(x);
  const double fy = micro.evaluate(y, &gy);
  torch::Tensor gcy = torch::empty_like(x);
  EXPECT_NEAR(consistent.evaluate(y, &gcy), fy + (g - gi).dot(y - x).item<double>(), 1e-14);
  EXPECT_TRUE(torch::allclose(gcy, gy + g - gi, 1e-14, 1e-15));
}

TEST(Sapts, OneProcessWithNMicroBatchesReducesTheLoss) {
  for (int n : {2, 4}) {
    for (TrustRegionModel model : {TrustRegionModel::kFirstOrder, TrustRegionModel::kLsr1}) {
      TinyClassifier problem(64, 1);
      MicroBatches batches(problem, torch::arange(64), n);
      SaptsOptions options;
      options.global.model = options.local.model = model;
      options.global_steps = 1;  // the evaluation counts below include the global pass
      Sapts solver(options);
      EXPECT_TRUE(solver.needs_data_subdomains());
      torch::Tensor x = problem.parameters->values().clone();
      double initial = NAN, previous = INFINITY;
      bool gradient_known = false;  // the previous step ended with the gradient at x
      int accepted = 0;
      const int iterations = 40;
      for (int k = 0; k < iterations; ++k) {
        StepSummary s = solver.step(batches.context, x);
        if (k == 0) initial = s.loss;
        EXPECT_LE(s.loss, previous) << "an accepted step must not increase the loss";
        previous = s.loss;
        accepted += s.accepted;
        // The start point (unless cached), the combined trial (with gradient for the global
        // pass), the global-pass trial (with gradient for L-SR1, loss only for first order).
        const bool lsr1 = model == TrustRegionModel::kLsr1;
        EXPECT_EQ(s.gradient_evaluations, (gradient_known ? 0 : 1) + 1 + (lsr1 ? 1 : 0));
        gradient_known = !std::isnan(s.gradient_norm);
        EXPECT_GE(s.local_gradient_evaluations, n);       // >= 1 per micro-batch
        ASSERT_EQ(s.termination, Termination::kRunning);
      }
      std::printf("    sapts N=%d %s: loss %.4f -> %.4f in %d iterations, %d combined steps "
                  "accepted, radius %.3g\n", n, to_string(model).c_str(), initial, previous,
                  iterations, accepted, solver.region().radius());
      EXPECT_LT(previous, 0.7 * initial);
      EXPECT_GT(accepted, iterations / 4);
    }
  }
}

// When the micro-batches add up to the global objective, step 1 is assembled from their
// evaluations and the local objectives reuse them: the same iterates, N fewer evaluations.
TEST(Sapts, MicroBatchesThatAddUpAreEvaluatedOncePerStep) {
  const int n = 3;
  auto run = [n](bool add_up, std::vector<StepSummary>& steps) {
    TinyClassifier problem(48, 4);
    MicroBatches batches(problem, torch::arange(48), n);
    batches.context.data_subdomains_add_up = add_up;
    Sapts solver;  // defaults: first order, no global pass, so no step starts from the cache
    torch::Tensor x = problem.parameters->values().clone();
    for (int k = 0; k < 12; ++k) steps.push_back(solver.step(batches.context, x));
    return x;
  };
  std::vector<StepSummary> separate, assembled;
  const torch::Tensor x_separate = run(false, separate);
  const torch::Tensor x_assembled = run(true, assembled);
  EXPECT_LE((x_assembled - x_separate).norm().item<double>(),
            1e-12 * x_separate.norm().item<double>());
  int accepted = 0;
  for (size_t k = 0; k < separate.size(); ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    EXPECT_NEAR(assembled[k].loss, separate[k].loss, 1e-13 * separate[k].loss);
    EXPECT_EQ(assembled[k].accepted, separate[k].accepted);
    EXPECT_EQ(assembled[k].gradient_evaluations, separate[k].gradient_evaluations);
    EXPECT_EQ(assembled[k].local_gradient_evaluations,
              separate[k].local_gradient_evaluations - n);
    accepted += assembled[k].accepted;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LT(assembled.back().loss, assembled.front().loss);
}

TEST(Sapts, Float32WithLsr1ReducesTheLoss) {
  TinyClassifier problem(64, 1, torch::kFloat32);
  MicroBatches batches(problem, torch::arange(64), 4);
  SaptsOptions options;
  options.global.model = options.local.model = TrustRegionModel::kLsr1;
  Sapts solver(options);
  torch::Tensor x = problem.parameters->values().clone();
  double initial = NAN, last = NAN;
  for (int k = 0; k < 30; ++k) {
    StepSummary s = solver.step(batches.context, x);
    ASSERT_TRUE(std::isfinite(s.loss));
    if (k == 0) initial = s.loss;
    last = s.loss;
  }
  EXPECT_EQ(x.scalar_type(), torch::kFloat32);
  EXPECT_LT(last, 0.7 * initial);
}

TEST(Sapts, CombinedStepStaysInsideTheRadius) {
  TinyClassifier problem(48, 2);
  MicroBatches batches(problem, torch::arange(48), 3);
  SaptsOptions options;
  options.global_steps = 0;  // only the combined step moves x
  options.global.radius = options.global.max_radius = 0.5;
  Sapts solver(options);
  torch::Tensor x = problem.parameters->values().clone();
  for (int k = 0; k < 10; ++k) {
    const double radius = solver.region().radius();
    StepSummary s = solver.step(batches.context, x);
    EXPECT_LE(s.step_length, radius * (1 + 1e-12));
  }
}

TEST(Sapts, NeedsMicroBatches) {
  TinyClassifier problem(16);
  MicroBatches batches(problem, torch::arange(16), 2);
  batches.context.data_subdomains.clear();  // e.g. a full-batch problem
  Sapts solver;
  torch::Tensor x = problem.parameters->values().clone();
  EXPECT_THROW(solver.step(batches.context, x), InvalidArgument);
}

TEST(AdditiveTrustRegionOptions, Validate) {
  // SAPTS's measured defaults (sapts.hpp); APTS keeps the specification's.
  EXPECT_EQ(SaptsOptions{}.global_steps, 0);
  EXPECT_EQ(SaptsOptions{}.global.max_radius, 0.3);
  EXPECT_EQ(SaptsOptions{}.local.eta1, 0.05);
  EXPECT_EQ(SaptsOptions{}.global.eta2, 0.5);
  EXPECT_EQ(SaptsOptions{}.global.eta1, 0.05);
  EXPECT_EQ(AptsOptions{}.global_steps, 1);
  EXPECT_EQ(AptsOptions{}.global.max_radius, 2.0);
  AdditiveTrustRegionOptions o;
  EXPECT_EQ(o.validate(), "");
  o.local_steps = 0;
  EXPECT_NE(o.validate().find("local_steps must be"), std::string::npos);
  o = {};
  o.local.eta2 = 0.1;
  EXPECT_NE(o.validate().find("local.eta2 must be"), std::string::npos);
  o = {};
  o.global.model = TrustRegionModel::kLsr1;  // the local model must agree
  EXPECT_NE(o.validate().find("global.model"), std::string::npos);
  EXPECT_THROW(Sapts{o}, InvalidArgument);
}

TEST(BatchGrowth, GrowsWhenTheEpochLossStalls) {
  BatchGrowthOptions options;
  options.enabled = true;
  BatchGrowth growth(options);  // factor 1.5, patience 2, tolerance 1%
  EXPECT_EQ(growth.batch_size(100, 1000), 100);
  auto epoch = [&](double loss) {
    for (int k = 0; k < 3; ++k) growth.record(loss);
    return growth.batch_size(100, 1000);
  };
  EXPECT_EQ(epoch(1.0), 100);    // first mean: the best so far
  EXPECT_EQ(epoch(0.9), 100);    // improved by 10%
  EXPECT_EQ(epoch(0.895), 100);  // < 1%: stalled once
  EXPECT_EQ(epoch(0.894), 150);  // stalled twice: grow
  EXPECT_EQ(epoch(0.894), 150);
  EXPECT_EQ(epoch(0.894), 225);
  for (int k = 0; k < 10; ++k) epoch(0.894);
  EXPECT_EQ(epoch(0.894), 1000);  // capped at the data set size
  BatchGrowth off;
  off.record(1.0);
  EXPECT_EQ(off.batch_size(100, 1000), 100);
}

namespace {

/// f(x) = 1/2 x'Ax - b'x with block-diagonal A (blocks of `block` entries).
class SeparableQuadratic final : public Objective {
 public:
  SeparableQuadratic(int blocks, int block, uint64_t seed) {
    torch::manual_seed(seed);
    const int64_t d = blocks * block;
    A_ = torch::zeros({d, d}, torch::kFloat64);
    for (int k = 0; k < blocks; ++k) {
      torch::Tensor m = torch::randn({block, block}, torch::kFloat64);
      A_.narrow(0, k * block, block).narrow(1, k * block, block)
          .copy_(m.matmul(m.t()) + torch::eye(block, torch::kFloat64));
    }
    b_ = torch::randn({d}, torch::kFloat64);
  }
  int64_t dimension() const override { return b_.numel(); }
  double evaluate(const torch::Tensor& x, torch::Tensor* gradient) override {
    count(gradient != nullptr);
    torch::Tensor ax = A_.mv(x);
    if (gradient != nullptr) gradient->copy_(ax - b_);
    return (0.5 * x.dot(ax) - b_.dot(x)).item<double>();
  }
  torch::Tensor initial_point() const override { return torch::zeros_like(b_); }
  torch::Tensor solution() const { return torch::linalg_solve(A_, b_); }

 private:
  torch::Tensor A_, b_;
};

Partition blocks(int count, int block) {
  std::vector<Subdomain> subdomains;
  for (int k = 0; k < count; ++k) subdomains.push_back({{}, {{k * block, (k + 1) * block}}});
  return Partition(subdomains, count * block);
}

}  // namespace

TEST(Apts, SeparableQuadraticConverges) {
  for (TrustRegionModel model : {TrustRegionModel::kFirstOrder, TrustRegionModel::kLsr1}) {
    SeparableQuadratic f(3, 4, 5);
    Partition partition = blocks(3, 4);
    StepContext context;
    context.objective = &f;
    context.accumulate_comm = std::make_shared<SelfComm>();
    context.partition = &partition;
    AptsOptions options;
    options.global.model = options.local.model = model;
    options.global.min_radius = options.local.min_radius = 0;  // first order: steps = radius
    Apts solver(options);
    EXPECT_TRUE(solver.needs_partition());
    torch::Tensor x = f.initial_point();
    const torch::Tensor solution = f.solution();
    int iterations = 0;
    const int max_iterations = 3000;
    while (iterations < max_iterations && (x - solution).norm().item<double>() > 1e-6) {
      StepSummary s = solver.step(context, x);
      ASSERT_NE(s.termination, Termination::kNumericalFailure);
      ++iterations;
    }
    std::printf("    apts 3 blocks %s: %d iterations to ||x - x*|| <= 1e-6\n",
                to_string(model).c_str(), iterations);
    EXPECT_LT(iterations, model == TrustRegionModel::kLsr1 ? 200 : max_iterations);
  }
}

TEST(Apts, NeedsADisjointPartition) {
  SeparableQuadratic f(2, 3, 1);
  std::vector<Subdomain> overlapping = {{{}, {{0, 4}}}, {{}, {{2, 6}}}};
  Partition partition(overlapping, 6);
  StepContext context;
  context.objective = &f;
  context.accumulate_comm = std::make_shared<SelfComm>();
  context.partition = &partition;
  Apts solver;
  torch::Tensor x = f.initial_point();
  EXPECT_THROW(solver.step(context, x), InvalidArgument);
  context.partition = nullptr;
  EXPECT_THROW(solver.step(context, x), InvalidArgument);
}
