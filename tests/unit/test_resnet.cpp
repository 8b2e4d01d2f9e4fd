// ResNet: the forward pass is the documented recurrence, and its decomposition layers are the
// `depth` units with the output layer in the last one.
#include <gtest/gtest.h>

#include "ddtrain/error.hpp"
#include "ddtrain/flat_parameters.hpp"
#include "ddtrain/models/resnet.hpp"

namespace ddtrain {
namespace {

int64_t linear_size(int64_t in, int64_t out) { return in * out + out; }

TEST(ResNet, DefaultsAreTheSeedsSixByForty) {
  const ResNetOptions o;
  EXPECT_EQ(o.depth, 6);
  EXPECT_EQ(o.width, 40);
  EXPECT_EQ(o.activation, Activation::kTanh);
  EXPECT_EQ(o.validate(), "");
}

TEST(ResNet, ForwardIsLiftResidualBlocksAndLinearOutput) {
  torch::manual_seed(3);
  ResNet net(ResNetOptions{3, 2, 4, 5, Activation::kTanh});
  net->to(torch::kFloat64);
  const torch::Tensor x = torch::randn({7, 3}, torch::kFloat64);
  const auto& u = net->units();
  ASSERT_EQ(u.size(), 4u);
  torch::Tensor h = torch::tanh(torch::matmul(x, u[0]->weight.t()) + u[0]->bias);
  for (int k = 1; k < 4; ++k) h = h + torch::tanh(torch::matmul(h, u[k]->weight.t()) + u[k]->bias);
  const torch::Tensor expected = torch::matmul(h, net->output()->weight.t()) + net->output()->bias;
  const torch::Tensor y = net->forward(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{7, 2}));
  EXPECT_TRUE(torch::allclose(y, expected, 0, 1e-14));
}

TEST(ResNet, ActivationIsConfigurable) {
  torch::manual_seed(4);
  ResNet net(ResNetOptions{1, 1, 2, 3, Activation::kSin});
  net->to(torch::kFloat64);
  const torch::Tensor x = torch::randn({5, 1}, torch::kFloat64);
  const auto& u = net->units();
  torch::Tensor h = torch::sin(torch::matmul(x, u[0]->weight.t()) + u[0]->bias);
  h = h + torch::sin(torch::matmul(h, u[1]->weight.t()) + u[1]->bias);
  const torch::Tensor expected = torch::matmul(h, net->output()->weight.t()) + net->output()->bias;
  EXPECT_TRUE(torch::allclose(net->forward(x), expected, 0, 1e-14));
}

TEST(ResNet, DecompositionLayersAreTheUnitsWithOutputInTheLast) {
  ResNet net(ResNetOptions{2, 1, 6, 40, Activation::kTanh});
  FlatParameters flat(*net, resnet_layer_of);
  const auto& layers = flat.layers();
  ASSERT_EQ(layers.size(), 6u);
  EXPECT_EQ(layers[0].range.size(), linear_size(2, 40));
  for (int k = 1; k < 5; ++k) {
    EXPECT_EQ(layers[k].name, "unit" + std::to_string(k));
    EXPECT_EQ(layers[k].range.size(), linear_size(40, 40));
  }
  EXPECT_EQ(layers[5].range.size(), linear_size(40, 40) + linear_size(40, 1));
  EXPECT_EQ(flat.size(), linear_size(2, 40) + 5 * linear_size(40, 40) + linear_size(40, 1));
  EXPECT_EQ(layers.back().range.end, flat.size());
  // The output parameters are the last entries and belong to the last unit.
  const auto& entries = flat.entries();
  EXPECT_EQ(entries.back().name, "unit5.output.bias");
  EXPECT_EQ(entries.back().layer, 5);
  EXPECT_EQ(resnet_layer_of("unit5.output.weight"), "unit5");
  EXPECT_EQ(resnet_layer_of("unit2.linear.bias"), "unit2");
}

TEST(ResNet, DepthOneIsLiftPlusOutput) {
  ResNet net(ResNetOptions{2, 1, 1, 8, Activation::kTanh});
  FlatParameters flat(*net, resnet_layer_of);
  ASSERT_EQ(flat.layers().size(), 1u);
  EXPECT_EQ(flat.size(), linear_size(2, 8) + linear_size(8, 1));
}

TEST(ResNet, InvalidOptionsNameTheField) {
  EXPECT_NE(ResNetOptions({2, 1, 0, 40, Activation::kTanh}).validate().find("depth must be"), std::string::npos);
  EXPECT_NE(ResNetOptions({2, 1, 6, 0, Activation::kTanh}).validate().find("width must be"), std::string::npos);
  EXPECT_THROW(ResNet(ResNetOptions{2, 1, 0, 40, Activation::kTanh}), InvalidArgument);
}

}  // namespace
}  // namespace ddtrain
