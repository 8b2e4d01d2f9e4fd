#include <cmath>

#include "ddtrain/enum_names.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/models.hpp"

namespace ddtrain {

namespace {
constexpr NameTable<Activation, 6> kActivationNames{{{Activation::kTanh, "tanh"},
                                                     {Activation::kRelu, "relu"},
                                                     {Activation::kSigmoid, "sigmoid"},
                                                     {Activation::kSin, "sin"},
                                                     {Activation::kGelu, "gelu"},
                                                     {Activation::kSoftplus, "softplus"}}};
}  // namespace

Activation parse_activation(const std::string& name) {
  return parse_name(kActivationNames, name, "activation");
}
std::string to_string(Activation activation) { return name_of(kActivationNames, activation); }

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::kTanh: return torch::tanh(x);
    case Activation::kRelu: return torch::relu(x);
    case Activation::kSigmoid: return torch::sigmoid(x);
    case Activation::kSin: return torch::sin(x);
    case Activation::kGelu: return torch::gelu(x);
    case Activation::kSoftplus: return torch::softplus(x);
  }
  // Only a value cast from an integer outside the enumeration gets here.
  throw InvalidArgument("activate: invalid Activation value " + std::to_string(static_cast<int>(activation)));
}

std::string WeightFactorization::validate(const std::string& path) const {
  if (!std::isfinite(mean)) return path + "mean must be finite";
  if (!(std >= 0) || !std::isfinite(std)) return path + "std must be finite and >= 0";
  return "";
}

torch::Tensor effective_weight(const torch::nn::Linear& layer) {
  const torch::Tensor* log_scale = layer->named_parameters(/*recurse=*/false).find("log_scale");
  if (log_scale == nullptr) return layer->weight;
  return log_scale->exp().unsqueeze(1) * layer->weight;
}

torch::Tensor apply_linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return torch::nn::functional::linear(x, effective_weight(layer), layer->bias);
}

void factorize_weights(torch::nn::Module& module, const WeightFactorization& factorization, uint64_t seed) {
  if (!factorization.enabled) return;
  require_valid(factorization.validate());
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (const auto& child : module.modules(/*include_self=*/true)) {
    auto* linear = child->as<torch::nn::LinearImpl>();
    if (linear == nullptr) continue;
    DDTRAIN_CHECK(linear->named_parameters(false).find("log_scale") == nullptr, InvalidArgument,
                  "factorize_weights: the network is factorized already");
    const torch::Tensor& w = linear->weight;
    const torch::Tensor s =
        (torch::randn({w.size(0)}, generator, torch::kFloat64) * factorization.std + factorization.mean)
            .to(w.options());
    w.mul_((-s).exp().unsqueeze(1));
    linear->register_parameter("log_scale", s);
  }
}

FullyConnectedImpl::FullyConnectedImpl(FullyConnectedOptions options) : options_(options) {
  DDTRAIN_CHECK(options_.depth >= 1, InvalidArgument, "depth must be >= 1, got ", options_.depth);
  DDTRAIN_CHECK(options_.width >= 1, InvalidArgument, "width must be >= 1, got ", options_.width);
  DDTRAIN_CHECK(options_.inputs >= 1 && options_.outputs >= 1, InvalidArgument,
                "network inputs/outputs must be >= 1");
  int64_t in = options_.inputs;
  for (int64_t l = 0; l <= options_.depth; ++l) {
    const int64_t out = l == options_.depth ? options_.outputs : options_.width;
    linears_.push_back(register_module("layer" + std::to_string(l), torch::nn::Linear(in, out)));
    in = out;
  }
}

torch::Tensor FullyConnectedImpl::forward(torch::Tensor x) {
  for (size_t l = 0; l + 1 < linears_.size(); ++l) x = activate(apply_linear(linears_[l], x), options_.activation);
  return apply_linear(linears_.back(), x);
}

ModifiedMlpImpl::ModifiedMlpImpl(FullyConnectedOptions options) : options_(options) {
  DDTRAIN_CHECK(options_.depth >= 1, InvalidArgument, "depth must be >= 1, got ", options_.depth);
  DDTRAIN_CHECK(options_.width >= 1, InvalidArgument, "width must be >= 1, got ", options_.width);
  DDTRAIN_CHECK(options_.inputs >= 1 && options_.outputs >= 1, InvalidArgument,
                "network inputs/outputs must be >= 1");
  encoder_u_ = register_module("encoder_u", torch::nn::Linear(options_.inputs, options_.width));
  encoder_v_ = register_module("encoder_v", torch::nn::Linear(options_.inputs, options_.width));
  for (int64_t l = 0; l < options_.depth; ++l)
    gates_.push_back(register_module("layer" + std::to_string(l),
                                     torch::nn::Linear(l == 0 ? options_.inputs : options_.width, options_.width)));
  output_ = register_module("output", torch::nn::Linear(options_.width, options_.outputs));
}

torch::Tensor ModifiedMlpImpl::forward(torch::Tensor x) {
  const torch::Tensor u = activate(apply_linear(encoder_u_, x), options_.activation);
  const torch::Tensor v = activate(apply_linear(encoder_v_, x), options_.activation);
  const torch::Tensor u_minus_v = u - v;
  for (const torch::nn::Linear& gate : gates_) {
    const torch::Tensor z = activate(apply_linear(gate, x), options_.activation);
    x = v + z * u_minus_v;  // z u + (1 - z) v
  }
  return apply_linear(output_, x);
}

}  // namespace ddtrain
