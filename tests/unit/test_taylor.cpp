// Taylor-mode derivatives (ddtrain/models/taylor.hpp) and the Allen–Cahn residual built on
// them: the network jets equal nested autograd for every activation and network (ResNet, FC,
// modified MLP; plain and factorized weights), the problem's Taylor residual and loss gradient
// equal the autograd ones (hard and soft constraints), u_x / u_t / u_xx match central
// differences, and the options parse and validate.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "ddtrain/error.hpp"
#include "ddtrain/models.hpp"
#include "ddtrain/models/resnet.hpp"
#include "ddtrain/models/taylor.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/problems/allen_cahn.hpp"
#include "ddtrain/problems/allen_cahn_fused.hpp"

namespace ddtrain {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(b.norm().item<double>(), 1e-300);
}

/// u, u_x, u_t, u_xx of a scalar network f(x, t) by nested autograd, each (n).
std::vector<torch::Tensor> autograd_derivatives(const std::function<torch::Tensor(torch::Tensor)>& f,
                                                const torch::Tensor& xt) {
  const torch::Tensor points = xt.detach().requires_grad_(true);
  const torch::Tensor u = f(points).reshape({-1});
  const torch::Tensor du = torch::autograd::grad({u}, {points}, {torch::ones_like(u)}, true, true)[0];
  const torch::Tensor u_x = du.select(1, 0);
  const torch::Tensor u_xx =
      torch::autograd::grad({u_x}, {points}, {torch::ones_like(u_x)}, true, true)[0].select(1, 0);
  return {u.detach(), u_x.detach(), du.select(1, 1).detach(), u_xx.detach()};
}

void expect_jet_equals_autograd(const SpaceTimeJet& jet,
                                const std::vector<torch::Tensor>& expected,
                                const std::string& what) {
  const torch::Tensor parts[] = {jet.value, jet.x, jet.t, jet.xx};
  const char* names[] = {"u", "u_x", "u_t", "u_xx"};
  for (int i = 0; i < 4; ++i)
    EXPECT_LT(relative_error(parts[i].detach().reshape({-1}), expected[i]), 1e-12)
        << what << ": " << names[i];
}

TEST(TaylorJet, NetworkJetsEqualNestedAutogradForEveryActivation) {
  torch::manual_seed(3);
  const torch::Tensor xt = torch::rand({57, 2}, kF64) * 2 - 1;
  for (const std::string activation : {"tanh", "relu", "sigmoid", "sin", "gelu", "softplus"}) {
    FullyConnected fc(FullyConnectedOptions{2, 1, 3, 9, parse_activation(activation)});
    ResNet resnet(ResNetOptions{2, 1, 3, 9, parse_activation(activation)});
    fc->to(torch::kFloat64);
    resnet->to(torch::kFloat64);
    expect_jet_equals_autograd(forward_jet(*fc, coordinate_jet(xt)),
                               autograd_derivatives([&](torch::Tensor p) { return fc->forward(p); }, xt),
                               "fc " + activation);
    expect_jet_equals_autograd(
        forward_jet(*resnet, coordinate_jet(xt)),
        autograd_derivatives([&](torch::Tensor p) { return resnet->forward(p); }, xt),
        "resnet " + activation);
  }
}

TEST(TaylorJet, ModifiedMlpAndFactorizedWeightsEqualNestedAutograd) {
  torch::manual_seed(4);
  const torch::Tensor xt = torch::rand({41, 2}, kF64) * 2 - 1;
  for (const std::string activation : {"tanh", "sin", "relu"}) {
    for (bool factorized : {false, true}) {
      const std::string what = activation + (factorized ? " factorized" : "");
      ModifiedMlp gated(FullyConnectedOptions{2, 1, 3, 7, parse_activation(activation)});
      FullyConnected fc(FullyConnectedOptions{2, 1, 2, 6, parse_activation(activation)});
      ResNet resnet(ResNetOptions{2, 1, 2, 6, parse_activation(activation)});
      for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(gated.get()),
                                   static_cast<torch::nn::Module*>(fc.get()),
                                   static_cast<torch::nn::Module*>(resnet.get())}) {
        m->to(torch::kFloat64);
        factorize_weights(*m, WeightFactorization{factorized, 1.0, 0.3}, 17);
      }
      expect_jet_equals_autograd(forward_jet(*gated, coordinate_jet(xt)),
                                 autograd_derivatives([&](torch::Tensor p) { return gated->forward(p); }, xt),
                                 "modified-mlp " + what);
      expect_jet_equals_autograd(forward_jet(*fc, coordinate_jet(xt)),
                                 autograd_derivatives([&](torch::Tensor p) { return fc->forward(p); }, xt),
                                 "fc " + what);
      expect_jet_equals_autograd(forward_jet(*resnet, coordinate_jet(xt)),
                                 autograd_derivatives([&](torch::Tensor p) { return resnet->forward(p); }, xt),
                                 "resnet " + what);
    }
  }
}

TEST(TaylorJet, ModifiedMlpIsTheGatedNetworkOfItsDefinition) {
  ModifiedMlp net(FullyConnectedOptions{2, 1, 2, 5, Activation::kTanh});
  net->to(torch::kFloat64);
  EXPECT_EQ(net->parameters().size(), 2u * 5u);  // encoders u, v, two gates, output
  const torch::Tensor x = torch::rand({9, 2}, kF64);
  auto dense = [](const torch::nn::Linear& l, const torch::Tensor& h) { return h.mm(l->weight.t()) + l->bias; };
  const torch::Tensor u = torch::tanh(dense(net->encoder_u(), x)), v = torch::tanh(dense(net->encoder_v(), x));
  torch::Tensor h = x;
  for (const auto& gate : net->gates()) {
    const torch::Tensor z = torch::tanh(dense(gate, h));
    h = z * u + (1 - z) * v;
  }
  EXPECT_LT(relative_error(net->forward(x), dense(net->output(), h)), 1e-14);
}

TEST(WeightFactorization, KeepsTheFunctionAndAddsOneLogScalePerUnit) {
  FullyConnected fc(FullyConnectedOptions{2, 1, 3, 9, Activation::kTanh});
  fc->to(torch::kFloat64);
  const torch::Tensor x = torch::rand({13, 2}, kF64);
  const torch::Tensor before = fc->forward(x).detach();
  const size_t count_before = fc->parameters().size();
  factorize_weights(*fc, WeightFactorization{false, 1.0, 0.1}, 3);  // off: nothing changes
  EXPECT_EQ(fc->parameters().size(), count_before);
  factorize_weights(*fc, WeightFactorization{true, 1.0, 0.1}, 3);
  EXPECT_EQ(fc->parameters().size(), count_before + 4);  // one log-scale vector per layer
  EXPECT_LT(relative_error(fc->forward(x).detach(), before), 1e-14);
  const torch::Tensor* s = fc->linears()[1]->named_parameters(false).find("log_scale");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->size(0), 9);
  EXPECT_NEAR(s->mean().item<double>(), 1.0, 0.15);
  EXPECT_GT(s->std().item<double>(), 0.02);
  // The trained V is W / exp(s): smaller than the initial weight by e^-1 on average.
  EXPECT_LT(fc->linears()[1]->weight.abs().sum().item<double>(),
            0.5 * effective_weight(fc->linears()[1]).abs().sum().item<double>());
  EXPECT_THROW(factorize_weights(*fc, WeightFactorization{true, 1.0, 0.1}, 3), InvalidArgument);
  EXPECT_NE(WeightFactorization({true, 1.0, -1.0}).validate().find("std must be finite"), std::string::npos);
  EXPECT_NE(WeightFactorization({true, NAN, 0.1}).validate().find("mean must be finite"), std::string::npos);
}

TEST(TaylorJet, FirstOrderJetLeavesOutTAndXx) {
  ResNet net(ResNetOptions{2, 1, 2, 5, Activation::kTanh});
  net->to(torch::kFloat64);
  const torch::Tensor xt = torch::rand({11, 2}, kF64);
  const SpaceTimeJet jet = forward_jet(*net, coordinate_jet(xt, false, false));
  EXPECT_FALSE(jet.has_t());
  EXPECT_FALSE(jet.has_xx());
  const SpaceTimeJet full = forward_jet(*net, coordinate_jet(xt));
  EXPECT_LT(relative_error(jet.x, full.x), 1e-15);
  EXPECT_LT(relative_error(jet.value, full.value), 1e-15);
}

TEST(TaylorJet, RejectsAMismatchedInputAndAnUnknownActivation) {
  ResNet net(ResNetOptions{3, 1, 2, 5, Activation::kTanh});
  net->to(torch::kFloat64);
  EXPECT_THROW(forward_jet(*net, coordinate_jet(torch::rand({4, 2}, kF64))), InvalidArgument);
  EXPECT_THROW(coordinate_jet(torch::rand({4, 3}, kF64)), InvalidArgument);
  // An unknown name fails where it is parsed, with the accepted names; every name round-trips.
  try {
    parse_activation("swish");
    ADD_FAILURE() << "parse_activation accepted 'swish'";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "unknown activation 'swish' (accepted: tanh, relu, sigmoid, sin, gelu, softplus)");
  }
  for (const char* name : {"tanh", "relu", "sigmoid", "sin", "gelu", "softplus"})
    EXPECT_EQ(to_string(parse_activation(name)), name);
}

// ---- the Allen–Cahn problem ----------------------------------------------------------------

reference::ReferenceField tiny_reference() {
  reference::AllenCahnReferenceOptions o;
  o.nx = 32;
  o.nt_out = 5;
  return reference::solve_allen_cahn(o);
}

AllenCahnOptions tiny_options(Constraints constraints, const std::string& model,
                              Derivatives derivatives) {
  AllenCahnOptions o;
  o.nf = 157;
  o.n0 = 23;
  o.nb = 19;
  o.model = parse_pinn_model(model);
  o.depth = 3;
  o.width = 10;
  o.diffusion = 0.01;  // larger than the default so u_xx weighs in the comparison
  o.dtype = torch::kFloat64;
  o.constraints = constraints;
  o.derivatives = derivatives;
  o.seed = 5;
  return o;
}

TEST(TaylorAllenCahn, ResidualAndLossGradientEqualAutograd) {
  const reference::ReferenceField reference = tiny_reference();
  for (Constraints constraints : {Constraints::kHard, Constraints::kSoft}) {
    for (const std::string model : {"resnet", "fc", "modified-mlp", "fc factorized"}) {
      const std::string what = to_string(constraints) + " " + model;
      auto options = [&](Derivatives derivatives) {
        AllenCahnOptions o = tiny_options(constraints, model.substr(0, model.find(' ')), derivatives);
        o.weight_factorization.enabled = model.find("factorized") != std::string::npos;
        return o;
      };
      AllenCahnProblem taylor(options(Derivatives::kTaylor), reference);
      AllenCahnProblem autograd(options(Derivatives::kAutograd), reference);
      ASSERT_TRUE(torch::equal(taylor.parameters().values(), autograd.parameters().values()));
      ASSERT_TRUE(torch::equal(taylor.residual_points(), autograd.residual_points()));

      const torch::Tensor r_taylor = taylor.residual(taylor.residual_points()).detach();
      const torch::Tensor r_autograd = autograd.residual(autograd.residual_points()).detach();
      EXPECT_LT(relative_error(r_taylor, r_autograd), 1e-12) << what;

      LocalObjective f_taylor(taylor.parameters(), [&] { return taylor.loss({}); });
      LocalObjective f_autograd(autograd.parameters(), [&] { return autograd.loss({}); });
      const torch::Tensor x = taylor.parameters().values().clone();
      torch::Tensor g_taylor = torch::zeros_like(x), g_autograd = torch::zeros_like(x);
      const double l_taylor = f_taylor.evaluate(x, &g_taylor);
      const double l_autograd = f_autograd.evaluate(x, &g_autograd);
      EXPECT_NEAR(l_taylor, l_autograd, 1e-12 * l_autograd) << what;
      EXPECT_GT(g_autograd.norm().item<double>(), 0) << what;
      EXPECT_LT(relative_error(g_taylor, g_autograd), 1e-12) << what;
      // A loss-only evaluation (no gradient asked) gives the same value.
      EXPECT_NEAR(f_taylor.loss(x), l_autograd, 1e-12 * l_autograd) << what;
    }
  }
}

TEST(TaylorAllenCahn, LossUnderNoGradGuardHasNoGraphAndTheSameValue) {
  AllenCahnProblem problem(tiny_options(Constraints::kSoft, "resnet", Derivatives::kTaylor),
                           tiny_reference());
  const double with_graph = problem.loss({}).item<double>();
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = problem.loss({});
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_NEAR(loss.item<double>(), with_graph, 1e-14 * with_graph);
}

TEST(TaylorAllenCahn, HardConstraintJetMatchesCentralDifferences) {
  AllenCahnProblem problem(tiny_options(Constraints::kHard, "resnet", Derivatives::kTaylor),
                           tiny_reference());
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  const torch::Tensor xt = torch::rand({31, 2}, kF64) * torch::tensor({2.0, 1.0}, kF64) -
                           torch::tensor({1.0, 0.0}, kF64);
  const SpaceTimeJet jet = problem.predict_jet(xt);
  EXPECT_LT(relative_error(jet.value, problem.predict(xt)), 1e-14);
  const double h = 1e-4;
  const torch::Tensor ex = torch::tensor({h, 0.0}, kF64), et = torch::tensor({0.0, h}, kF64);
  const torch::Tensor u = problem.predict(xt);
  const torch::Tensor up = problem.predict(xt + ex), um = problem.predict(xt - ex);
  EXPECT_LT(relative_error(jet.x, (up - um) / (2 * h)), 1e-7);
  EXPECT_LT(relative_error(jet.xx, (up - 2 * u + um) / (h * h)), 1e-5);
  EXPECT_LT(relative_error(jet.t, (problem.predict(xt + et) - problem.predict(xt - et)) / (2 * h)),
            1e-7);
}

TEST(TaylorAllenCahn, DerivativesOptionParses) {
  for (Derivatives d : {Derivatives::kAuto, Derivatives::kFused, Derivatives::kTaylor, Derivatives::kAutograd})
    EXPECT_EQ(parse_derivatives(to_string(d)), d);
  EXPECT_EQ(to_string(Derivatives::kAutograd), "autograd");
  EXPECT_THROW(parse_derivatives("forward"), InvalidArgument);
  EXPECT_EQ(AllenCahnOptions{}.derivatives, Derivatives::kAuto);
}

// ---- the fused loss (ddtrain/problems/allen_cahn_fused.hpp) ----------------------------------

TEST(FusedAllenCahn, LossAndGradientEqualTaylorForEveryChunkSizeAndThreadCount) {
  const reference::ReferenceField reference = tiny_reference();
  const int threads = at::get_num_threads();
  for (const std::string model : {"resnet", "fc"}) {
    AllenCahnProblem problem(tiny_options(Constraints::kHard, model, Derivatives::kTaylor), reference);
    // Taylor's loss and gradient by autograd.
    LocalObjective taylor(problem.parameters(), [&] { return problem.loss({}); });
    const torch::Tensor x = problem.parameters().values().clone();
    torch::Tensor g_taylor = torch::zeros_like(x);
    const double l_taylor = taylor.evaluate(x, &g_taylor);

    std::optional<FusedTanhNetwork> network =
        model == "resnet" ? FusedTanhNetwork::of(*problem.model().as<ResNetImpl>())
                          : FusedTanhNetwork::of(*problem.model().as<FullyConnectedImpl>());
    ASSERT_TRUE(network.has_value()) << model;
    const double scale = 1.0 / static_cast<double>(problem.global_num_samples());
    for (int64_t chunk : {1, 16, 50, 157, 1000}) {   // 157 points: partial last chunks
      for (int t : {1, 2}) {
        at::set_num_threads(t);
        const std::string what = model + " chunk " + std::to_string(chunk) + " threads " + std::to_string(t);
        FusedAllenCahnLoss fused(*network, {0.01, 5.0, chunk});
        const FusedAllenCahnLoss::Result result = fused.evaluate(problem.residual_points(), scale, true);
        EXPECT_NEAR(result.loss, l_taylor, 1e-12 * l_taylor) << what;
        std::vector<torch::Tensor> flat;
        for (const torch::Tensor& g : result.gradients) flat.push_back(g.reshape({-1}));
        // FusedAllenCahnLoss::parameters() is the module's parameter order, as FlatParameters'.
        EXPECT_LT(relative_error(torch::cat(flat), g_taylor), 1e-12) << what;
        EXPECT_NEAR(fused.evaluate(problem.residual_points(), scale, false).loss, l_taylor,
                    1e-12 * l_taylor) << what;
      }
    }
  }
  at::set_num_threads(threads);
}

// The sums run over a fixed split of the chunks into reduction blocks, added in block order:
// the same bits for any thread count (issue 21 item 5), also with more chunks than blocks.
TEST(FusedAllenCahn, SameBitsForAnyThreadCount) {
  const reference::ReferenceField reference = tiny_reference();
  const int threads = at::get_num_threads();
  AllenCahnOptions o = tiny_options(Constraints::kHard, "resnet", Derivatives::kTaylor);
  o.nf = 1000;
  AllenCahnProblem problem(o, reference);
  std::optional<FusedTanhNetwork> network = FusedTanhNetwork::of(*problem.model().as<ResNetImpl>());
  ASSERT_TRUE(network.has_value());
  for (int64_t chunk : {8, 100}) {  // 125 chunks (over 64 blocks) and 10
    std::optional<FusedAllenCahnLoss::Result> first;
    for (int t : {1, 2, 3, 4}) {
      at::set_num_threads(t);
      FusedAllenCahnLoss fused(*network, {0.01, 5.0, chunk});
      FusedAllenCahnLoss::Result result = fused.evaluate(problem.residual_points(), 1e-3, true);
      if (!first) {
        first = std::move(result);
        continue;
      }
      const std::string what = "chunk " + std::to_string(chunk) + " threads " + std::to_string(t);
      EXPECT_EQ(result.loss, first->loss) << what;
      for (size_t i = 0; i < result.gradients.size(); ++i)
        EXPECT_TRUE(torch::equal(result.gradients[i], first->gradients[i])) << what << " parameter " << i;
    }
  }
  at::set_num_threads(threads);
}

TEST(FusedAllenCahn, ProblemUsesItByDefaultWithTheSameLossGradientAndLossOnlyValue) {
  const reference::ReferenceField reference = tiny_reference();
  for (const std::string model : {"resnet", "fc"}) {
    AllenCahnProblem fused(tiny_options(Constraints::kHard, model, Derivatives::kAuto), reference);
    AllenCahnProblem taylor(tiny_options(Constraints::kHard, model, Derivatives::kTaylor), reference);
    EXPECT_EQ(fused.derivatives(), Derivatives::kFused) << model;
    LocalObjective f_fused(fused.parameters(), [&] { return fused.loss({}); });
    LocalObjective f_taylor(taylor.parameters(), [&] { return taylor.loss({}); });
    const torch::Tensor x = fused.parameters().values().clone() * 1.3;  // away from the start
    torch::Tensor g_fused = torch::zeros_like(x), g_taylor = torch::zeros_like(x);
    const double l_fused = f_fused.evaluate(x, &g_fused), l_taylor = f_taylor.evaluate(x, &g_taylor);
    EXPECT_NEAR(l_fused, l_taylor, 1e-12 * l_taylor) << model;
    EXPECT_LT(relative_error(g_fused, g_taylor), 1e-12) << model;
    EXPECT_NEAR(f_fused.loss(x), l_taylor, 1e-12 * l_taylor) << model;
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(fused.loss({}).requires_grad());
  }
}

TEST(FusedAllenCahn, CausalWeightingEqualsTaylorsWithWeightsFrozenAfterTheFirstEvaluation) {
  const reference::ReferenceField reference = tiny_reference();
  AllenCahnOptions o = tiny_options(Constraints::kHard, "resnet", Derivatives::kFused);
  o.causal_epsilon = 3.0;
  o.causal_bins = 4;
  AllenCahnProblem fused(o, reference);
  o.derivatives = Derivatives::kTaylor;
  AllenCahnProblem taylor(o, reference);
  LocalObjective f_fused(fused.parameters(), [&] { return fused.loss({}); });
  LocalObjective f_taylor(taylor.parameters(), [&] { return taylor.loss({}); });
  const torch::Tensor x0 = fused.parameters().values().clone();
  for (const torch::Tensor& x : {x0, x0 * 1.5}) {  // the second uses the first one's weights
    torch::Tensor g_fused = torch::zeros_like(x), g_taylor = torch::zeros_like(x);
    const double l_fused = f_fused.evaluate(x, &g_fused), l_taylor = f_taylor.evaluate(x, &g_taylor);
    EXPECT_NEAR(l_fused, l_taylor, 1e-12 * l_taylor);
    EXPECT_LT(relative_error(g_fused, g_taylor), 1e-12);
  }
  // Weights matter: the unweighted loss at x0 differs.
  AllenCahnOptions plain = o;
  plain.causal_epsilon = 0;
  AllenCahnProblem unweighted(plain, reference);
  LocalObjective f_plain(unweighted.parameters(), [&] { return unweighted.loss({}); });
  EXPECT_GT(std::abs(f_plain.loss(x0) - f_taylor.loss(x0)), 1e-6 * f_plain.loss(x0));
}

TEST(FusedAllenCahn, FrozenLowerLayersGiveTaylorsGradientAndLossOnlyKeepsTheTrainableFlags) {
  const reference::ReferenceField reference = tiny_reference();
  for (const std::string model : {"resnet", "fc"}) {
    AllenCahnProblem fused(tiny_options(Constraints::kHard, model, Derivatives::kFused), reference);
    AllenCahnProblem taylor(tiny_options(Constraints::kHard, model, Derivatives::kTaylor), reference);
    // Train only the upper half of the flat vector (a subdomain solve of preconditioned L-BFGS).
    const int64_t n = fused.parameters().size();
    for (AllenCahnProblem* p : {&fused, &taylor}) p->parameters().set_trainable({Range{n / 2, n}});
    const std::vector<bool> flags = fused.parameters().trainable_flags();
    ASSERT_NE(std::count(flags.begin(), flags.end(), false), 0) << model;
    LocalObjective f_fused(fused.parameters(), [&] { return fused.loss({}); });
    LocalObjective f_taylor(taylor.parameters(), [&] { return taylor.loss({}); });
    const torch::Tensor x = fused.parameters().values().clone();
    torch::Tensor g_fused = torch::zeros_like(x), g_taylor = torch::zeros_like(x);
    EXPECT_NEAR(f_fused.evaluate(x, &g_fused), f_taylor.evaluate(x, &g_taylor), 1e-12);
    EXPECT_LT(relative_error(g_fused, g_taylor), 1e-12) << model;
    const auto& entries = fused.parameters().entries();
    for (size_t i = 0; i < entries.size(); ++i)
      if (!flags[i]) {  // a frozen parameter has no gradient
        EXPECT_EQ(g_fused.narrow(0, entries[i].range.begin, entries[i].range.size()).abs().max().item<double>(),
                  0.0) << model << " " << i;
      }
    f_fused.loss(x);
    EXPECT_EQ(fused.parameters().trainable_flags(), flags) << model;
  }
}

TEST(FusedAllenCahn, FrozenLayersOutputIsReusedOnlyForTheSamePointsAndFrozenValues) {
  const reference::ReferenceField reference = tiny_reference();
  for (const std::string model : {"resnet", "fc"}) {
    AllenCahnProblem problem(tiny_options(Constraints::kHard, model, Derivatives::kTaylor), reference);
    std::optional<FusedTanhNetwork> network =
        model == "resnet" ? FusedTanhNetwork::of(*problem.model().as<ResNetImpl>())
                          : FusedTanhNetwork::of(*problem.model().as<FullyConnectedImpl>());
    ASSERT_TRUE(network.has_value()) << model;
    ASSERT_GE(network->hidden.size(), 3u) << model;
    for (int l = 0; l < 2; ++l) {  // the two lowest layers are frozen (a subdomain solve)
      network->hidden[l]->weight.requires_grad_(false);
      network->hidden[l]->bias.requires_grad_(false);
    }
    FusedAllenCahnLoss cached(*network, {0.01, 5.0, 50});     // 50: a partial last chunk
    FusedAllenCahnLoss uncached(*network, {0.01, 5.0, 50});   // evaluate(): never cached
    std::vector<torch::Tensor> trained;
    for (const torch::Tensor& p : cached.parameters())
      if (p.requires_grad()) trained.push_back(p);
    const torch::Tensor points = problem.residual_points();
    // Each case must give bit for bit what a full forward gives, with the cache holding the
    // output of the two frozen layers afterwards.
    auto expect_exact = [&](const torch::Tensor& at, const std::string& what) {
      const FusedAllenCahnLoss::Result full = uncached.evaluate(at, 0.1, true);
      const torch::Tensor loss = cached(at, 0.1);
      EXPECT_EQ(loss.item<double>(), full.loss) << model << ": " << what;
      const std::vector<torch::Tensor> grads = torch::autograd::grad({loss}, trained);
      for (size_t i = 0; i < trained.size(); ++i)  // trained = the last parameters
        EXPECT_TRUE(torch::equal(grads[i], full.gradients[full.gradients.size() - trained.size() + i]))
            << model << ": " << what << ", parameter " << i;
      torch::NoGradGuard no_grad;
      EXPECT_EQ(cached(at, 0.1).item<double>(), full.loss) << model << ": " << what << " (loss only)";
      EXPECT_EQ(cached.cached_frozen_layers(), 2u) << model << ": " << what;
      return full.loss;
    };
    const double first = expect_exact(points, "first evaluation");
    EXPECT_EQ(expect_exact(points, "same points and values"), first);
    {
      torch::NoGradGuard no_grad;
      network->hidden.back()->weight.mul_(1.1);  // a trained layer: the cache stays valid
    }
    const double trained_moved = expect_exact(points, "a trained layer moved");
    EXPECT_NE(trained_moved, first) << model;
    {
      torch::NoGradGuard no_grad;
      network->hidden[1]->bias.add_(0.05);  // a frozen layer: the cache must be refilled
    }
    EXPECT_NE(expect_exact(points, "a frozen layer moved"), trained_moved) << model;
    expect_exact(points * 0.5, "other points");
    expect_exact(points, "the first points again");
    for (int l = 0; l < 2; ++l) {
      network->hidden[l]->weight.requires_grad_(true);
      network->hidden[l]->bias.requires_grad_(true);
    }
    const torch::Tensor loss = cached(points, 0.1);  // nothing frozen: a full forward
    EXPECT_EQ(loss.item<double>(), uncached.evaluate(points, 0.1, false).loss) << model;
  }
}

TEST(FusedAllenCahn, Float32AgreesWithTaylorToSinglePrecision) {
  AllenCahnOptions o = tiny_options(Constraints::kHard, "resnet", Derivatives::kFused);
  o.dtype = torch::kFloat32;
  o.nf = 3000;
  AllenCahnProblem fused(o, tiny_reference());
  o.derivatives = Derivatives::kTaylor;
  AllenCahnProblem taylor(o, tiny_reference());
  LocalObjective f_fused(fused.parameters(), [&] { return fused.loss({}); });
  LocalObjective f_taylor(taylor.parameters(), [&] { return taylor.loss({}); });
  const torch::Tensor x = fused.parameters().values().clone();
  torch::Tensor g_fused = torch::zeros_like(x), g_taylor = torch::zeros_like(x);
  const double l_fused = f_fused.evaluate(x, &g_fused), l_taylor = f_taylor.evaluate(x, &g_taylor);
  EXPECT_NEAR(l_fused, l_taylor, 1e-5 * l_taylor);
  EXPECT_LT(relative_error(g_fused, g_taylor), 1e-4);
}

TEST(FusedAllenCahn, AutoFallsBackToTaylorAndAnExplicitFusedRequestIsCheckedClearly) {
  const reference::ReferenceField reference = tiny_reference();
  AllenCahnProblem soft(tiny_options(Constraints::kSoft, "resnet", Derivatives::kAuto), reference);
  EXPECT_EQ(soft.derivatives(), Derivatives::kTaylor);
  AllenCahnOptions sine = tiny_options(Constraints::kHard, "resnet", Derivatives::kAuto);
  sine.activation = Activation::kSin;
  EXPECT_EQ(AllenCahnProblem(sine, reference).derivatives(), Derivatives::kTaylor);
  AllenCahnOptions causal = tiny_options(Constraints::kHard, "fc", Derivatives::kAuto);
  causal.causal_epsilon = 1.0;
  EXPECT_EQ(AllenCahnProblem(causal, reference).derivatives(), Derivatives::kFused);

  AllenCahnOptions no_chunk = tiny_options(Constraints::kHard, "resnet", Derivatives::kFused);
  no_chunk.fused_chunk = 0;
  EXPECT_NE(no_chunk.validate().find("fused_chunk must be >= 1"), std::string::npos) << no_chunk.validate();
  EXPECT_THROW(AllenCahnProblem(no_chunk, reference), InvalidArgument);

  AllenCahnOptions gated = tiny_options(Constraints::kHard, "modified-mlp", Derivatives::kAuto);
  AllenCahnOptions factorized = tiny_options(Constraints::kHard, "fc", Derivatives::kAuto);
  factorized.weight_factorization.enabled = true;
  EXPECT_EQ(AllenCahnProblem(gated, reference).derivatives(), Derivatives::kTaylor);
  EXPECT_EQ(AllenCahnProblem(factorized, reference).derivatives(), Derivatives::kTaylor);

  for (AllenCahnOptions o : {tiny_options(Constraints::kSoft, "resnet", Derivatives::kFused), sine, gated, factorized}) {
    o.derivatives = Derivatives::kFused;
    EXPECT_NE(o.validate().find("derivatives fused: it "), std::string::npos) << o.validate();
    EXPECT_THROW(AllenCahnProblem(o, reference), InvalidArgument);
  }
  EXPECT_NE(gated.why_not_fused().find("model resnet or fc"), std::string::npos);
  EXPECT_NE(factorized.why_not_fused().find("no weight_factorization"), std::string::npos);
  try {
    parse_pinn_model("mlp");
    ADD_FAILURE() << "parse_pinn_model accepted 'mlp'";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "unknown model 'mlp' (accepted: resnet, fc, modified-mlp)");
  }
  for (PinnModel model : {PinnModel::kResNet, PinnModel::kFullyConnected, PinnModel::kModifiedMlp})
    EXPECT_EQ(parse_pinn_model(to_string(model)), model);
}

/// The fused (auto), Taylor and autograd paths of the problem `options(derivatives)` give the same
/// loss and gradient at the initial parameters scaled by 1.3.
void expect_three_paths_agree(const std::function<AllenCahnOptions(Derivatives)>& options,
                              const reference::ReferenceField& reference, const std::string& what) {
  AllenCahnProblem fused(options(Derivatives::kAuto), reference);
  AllenCahnProblem taylor(options(Derivatives::kTaylor), reference);
  AllenCahnProblem autograd(options(Derivatives::kAutograd), reference);
  ASSERT_EQ(fused.derivatives(), Derivatives::kFused) << what;
  ASSERT_EQ(fused.parameters().size(), taylor.parameters().size()) << what;
  LocalObjective f_fused(fused.parameters(), [&] { return fused.loss({}); });
  LocalObjective f_taylor(taylor.parameters(), [&] { return taylor.loss({}); });
  LocalObjective f_autograd(autograd.parameters(), [&] { return autograd.loss({}); });
  const torch::Tensor x = fused.parameters().values().clone() * 1.3;
  torch::Tensor g_fused = torch::zeros_like(x), g_taylor = torch::zeros_like(x), g_autograd = torch::zeros_like(x);
  const double l_fused = f_fused.evaluate(x, &g_fused), l_taylor = f_taylor.evaluate(x, &g_taylor);
  const double l_autograd = f_autograd.evaluate(x, &g_autograd);
  EXPECT_NEAR(l_fused, l_taylor, 1e-12 * l_taylor) << what;
  EXPECT_NEAR(l_autograd, l_taylor, 1e-12 * l_taylor) << what;
  EXPECT_LT(relative_error(g_fused, g_taylor), 1e-12) << what;
  EXPECT_LT(relative_error(g_autograd, g_taylor), 1e-12) << what;
}

TEST(FusedAllenCahn, FourierModesAndIcDecayGiveTheTaylorAndAutogradLossAndGradient) {
  const reference::ReferenceField reference = tiny_reference();
  for (const std::string model : {"resnet", "fc"}) {
    auto options = [&](Derivatives derivatives) {
      AllenCahnOptions o = tiny_options(Constraints::kHard, model, derivatives);
      o.fourier_modes = 3;
      o.ic_decay = 10;
      return o;
    };
    expect_three_paths_agree(options, reference, model);
    AllenCahnProblem fused(options(Derivatives::kAuto), reference);
    // 7 inputs: the first layer has 7 * width weights.
    EXPECT_EQ(fused.model().parameters()[0].size(1), 7) << model;
    // Still exactly periodic in x and exact at t = 0.
    const torch::Tensor t = torch::linspace(0, 1, 23, torch::kFloat64);
    const torch::Tensor left = fused.predict(torch::stack({-torch::ones_like(t), t}, 1));
    const torch::Tensor right = fused.predict(torch::stack({torch::ones_like(t), t}, 1));
    EXPECT_LT((left - right).abs().max().item<double>(), 1e-14) << model;
    const torch::Tensor xs = torch::linspace(-1, 1, 41, torch::kFloat64);
    const torch::Tensor u0 = fused.predict(torch::stack({xs, torch::zeros_like(xs)}, 1));
    EXPECT_LT((u0 - xs * xs * torch::cos(M_PI * xs)).abs().max().item<double>(), 1e-15) << model;
  }
  AllenCahnOptions soft = tiny_options(Constraints::kSoft, "fc", Derivatives::kAuto);
  soft.fourier_modes = 2;
  EXPECT_NE(soft.validate().find("fourier_modes applies to hard constraints"), std::string::npos);
  AllenCahnOptions zero = tiny_options(Constraints::kHard, "fc", Derivatives::kAuto);
  zero.fourier_modes = 0;
  EXPECT_NE(zero.validate().find("fourier_modes must be in [1, 64]"), std::string::npos);
  soft.fourier_modes = 1;
  soft.ic_decay = 10;
  EXPECT_NE(soft.validate().find("ic_decay applies to hard constraints"), std::string::npos);
}

TEST(FusedAllenCahn, IcSmoothingGivesTheTaylorAndAutogradLossAndGradientAndASmoothCorner) {
  const reference::ReferenceField reference = tiny_reference();
  for (const double decay : {0.0, 10.0}) {
    auto options = [&](Derivatives derivatives) {
      AllenCahnOptions o = tiny_options(Constraints::kHard, "fc", derivatives);
      o.ic_smoothing = true;
      o.ic_decay = decay;
      o.diffusion = 0.05;  // a corner width sqrt(2 nu t) that most points see
      return o;
    };
    expect_three_paths_agree(options, reference, "ic-decay " + std::to_string(decay));
    AllenCahnProblem fused(options(Derivatives::kAuto), reference);
    AllenCahnProblem taylor(options(Derivatives::kTaylor), reference);
    // Exact at t = 0, periodic, and (the point of it) no slope jump across x = +-1 for t > 0,
    // where u0's carrier alone jumps by 4 e^{-c t}.
    const torch::Tensor xs = torch::linspace(-1, 1, 41, torch::kFloat64);
    const torch::Tensor u0 = fused.predict(torch::stack({xs, torch::zeros_like(xs)}, 1));
    EXPECT_LT((u0 - xs * xs * torch::cos(M_PI * xs)).abs().max().item<double>(), 1e-15) << decay;
    const torch::Tensor t = torch::linspace(0.01, 1, 12, torch::kFloat64);
    const double edge = 1 - 1e-7;
    const SpaceTimeJet left = taylor.predict_jet(torch::stack({-edge * torch::ones_like(t), t}, 1), true, true);
    const SpaceTimeJet right = taylor.predict_jet(torch::stack({edge * torch::ones_like(t), t}, 1), true, true);
    EXPECT_LT((left.value - right.value).abs().max().item<double>(), 1e-6) << decay;
    EXPECT_LT((left.x - right.x).abs().max().item<double>(), 1e-4) << decay;
    EXPECT_LT((left.xx - right.xx).abs().max().item<double>(), 1e-4) << decay;
  }
  AllenCahnOptions soft = tiny_options(Constraints::kSoft, "fc", Derivatives::kAuto);
  soft.ic_smoothing = true;
  EXPECT_NE(soft.validate().find("ic_smoothing applies to hard constraints"), std::string::npos);
}

}  // namespace
}  // namespace ddtrain
