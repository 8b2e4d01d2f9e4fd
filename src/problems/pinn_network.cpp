#include "ddtrain/problems/pinn_network.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include "ddtrain/enum_names.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/models/resnet.hpp"

namespace ddtrain {
namespace {

constexpr NameTable<PinnModel, 3> kPinnModelNames{{{PinnModel::kResNet, "resnet"},
                                                   {PinnModel::kFullyConnected, "fc"},
                                                   {PinnModel::kModifiedMlp, "modified-mlp"}}};

/// Xavier-normal weights and zero biases (the usual tanh-PINN initialization), drawn in float64
/// from a generator of its own.
void initialize_xavier(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (auto& item : module.named_parameters()) {
    torch::Tensor& p = item.value();
    if (p.dim() == 2) {
      const double std = std::sqrt(2.0 / static_cast<double>(p.size(0) + p.size(1)));
      p.copy_(torch::randn(p.sizes(), generator, torch::kFloat64) * std);
    } else {
      p.zero_();
    }
  }
}

template <typename Net>
void wrap(PinnNetwork& out, Net net) {
  out.module = net.ptr();
  out.forward = [net](const torch::Tensor& in) mutable { return net->forward(in); };
  out.forward_jet = [net](const SpaceTimeJet& in) mutable { return forward_jet(*net, in); };
}

}  // namespace

PinnModel parse_pinn_model(const std::string& name) { return parse_name(kPinnModelNames, name, "model"); }
std::string to_string(PinnModel model) { return name_of(kPinnModelNames, model); }

PinnNetwork make_pinn_network(const PinnNetworkOptions& o, uint64_t seed, uint64_t factorization_seed,
                              torch::Dtype dtype, torch::Device device) {
  PinnNetwork out;
  switch (o.model) {
    case PinnModel::kResNet: {
      ResNet net(ResNetOptions{o.inputs, 1, o.depth, o.width, o.activation});
      wrap(out, net);
      out.fused = FusedTanhNetwork::of(*net);
      out.layer_of = resnet_layer_of;
      break;
    }
    case PinnModel::kFullyConnected: {
      FullyConnected net(FullyConnectedOptions{o.inputs, 1, o.depth, o.width, o.activation});
      wrap(out, net);
      out.fused = FusedTanhNetwork::of(*net);
      break;
    }
    case PinnModel::kModifiedMlp:
      wrap(out, ModifiedMlp(FullyConnectedOptions{o.inputs, 1, o.depth, o.width, o.activation}));
      break;
  }
  DDTRAIN_CHECK(out.module, InvalidArgument, "make_pinn_network: invalid PinnModel value ",
                static_cast<int>(o.model));
  initialize_xavier(*out.module, seed);
  out.module->to(device, dtype);
  factorize_weights(*out.module, o.weight_factorization, factorization_seed);
  return out;
}

torch::Tensor reference_grid_points(const reference::ReferenceField& field, torch::Dtype dtype,
                                    torch::Device device) {
  const int64_t nx = field.nx(), nt = field.nt();
  DDTRAIN_CHECK(nx >= 1 && nt >= 1 && static_cast<int64_t>(field.u.size()) == nx * nt, InvalidArgument,
                "a reference field must hold nx * nt values");
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor x = torch::tensor(field.x, f64), t = torch::tensor(field.t, f64);
  return torch::stack({x.repeat({nt}), t.repeat_interleave(nx)}, 1).to(device, dtype);
}

torch::Tensor predict_in_chunks(const std::function<torch::Tensor(const torch::Tensor&)>& u,
                                const torch::Tensor& points) {
  torch::NoGradGuard no_grad;
  constexpr int64_t kChunk = 16384;  // bounds the activations' memory
  std::vector<torch::Tensor> parts;
  for (const torch::Tensor& chunk : points.split(kChunk))
    parts.push_back(u(chunk).reshape({-1}).to(torch::kCPU, torch::kFloat64));
  return torch::cat(parts);
}

void write_field_csv(const std::string& path, const reference::ReferenceField& field,
                     const torch::Tensor& prediction) {
  DDTRAIN_CHECK(prediction.numel() == static_cast<int64_t>(field.u.size()), InvalidArgument,
                "write_field_csv: ", prediction.numel(), " predicted values for ", field.u.size(),
                " reference values");
  const torch::Tensor values = prediction.detach().reshape({-1}).to(torch::kCPU, torch::kFloat64).contiguous();
  const auto u_pred = values.accessor<double, 1>();
  const std::string partial = path + ".tmp";
  {
    std::ofstream out(partial);
    DDTRAIN_CHECK(out.good(), IoError, "cannot write '", partial, "'");
    out << "x,t,u_ref,u_pred,error\n";
    const int nx = field.nx();
    char line[160];
    for (int64_t k = 0; k < values.numel(); ++k) {
      const double u_ref = field.u[k];
      std::snprintf(line, sizeof line, "%.9g,%.9g,%.12g,%.9g,%.3e\n", field.x[k % nx], field.t[k / nx], u_ref,
                    u_pred[k], std::abs(u_pred[k] - u_ref));
      out << line;
    }
    out.close();
    DDTRAIN_CHECK(out.good(), IoError, "writing '", partial, "' failed");
  }
  DDTRAIN_CHECK(std::rename(partial.c_str(), path.c_str()) == 0, IoError, "cannot rename '", partial, "' to '",
                path, "'");
}

}  // namespace ddtrain
