#include "ddtrain/models/taylor.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "ddtrain/error.hpp"
#include "tanh_jet_kernels.hpp"

namespace ddtrain {

namespace {

/// A jet stored as one tensor (slots, n, k): slot 0 the value, slot 1 d/dx, then d/dt if
/// `t`, then d2/dx2 if `xx` (always last). Linear layers act on all slots with one matmul.
struct StackedJet {
  torch::Tensor data;
  bool t = false;
  bool xx = false;

  int64_t slots() const { return 2 + (t ? 1 : 0) + (xx ? 1 : 0); }
  /// Slots of the first-order tangents (x and t): 1 .. first_order().
  int64_t first_order() const { return t ? 2 : 1; }
};

StackedJet stack(const SpaceTimeJet& jet) {
  DDTRAIN_CHECK(jet.value.defined() && jet.x.defined(), InvalidArgument,
                "a space-time jet needs its value and x derivative");
  DDTRAIN_CHECK(jet.value.dim() == 2 && jet.x.sizes() == jet.value.sizes() &&
                    (!jet.has_t() || jet.t.sizes() == jet.value.sizes()) &&
                    (!jet.has_xx() || jet.xx.sizes() == jet.value.sizes()),
                InvalidArgument, "a space-time jet's parts must all be (n, k) of one shape");
  std::vector<torch::Tensor> parts{jet.value, jet.x};
  if (jet.has_t()) parts.push_back(jet.t);
  if (jet.has_xx()) parts.push_back(jet.xx);
  return StackedJet{torch::stack(parts), jet.has_t(), jet.has_xx()};
}

SpaceTimeJet unstack(const StackedJet& jet) {
  SpaceTimeJet out;
  out.value = jet.data.select(0, 0);
  out.x = jet.data.select(0, 1);
  if (jet.t) out.t = jet.data.select(0, 2);
  if (jet.xx) out.xx = jet.data.select(0, jet.slots() - 1);
  return out;
}

/// W h on every slot by one matmul. The bias, which belongs to the value slot only, is
/// returned apart (undefined if the layer has none) so that the activation adds it to the
/// value it computes anyway instead of copying the whole stack.
struct Affine {
  StackedJet linear;
  torch::Tensor bias;
};

Affine linear(const StackedJet& in, const torch::nn::Linear& layer) {
  const torch::Tensor w = effective_weight(layer);
  const int64_t slots = in.data.size(0), n = in.data.size(1);
  DDTRAIN_CHECK(in.data.size(2) == w.size(1), InvalidArgument, "forward_jet: the input jet has ",
                in.data.size(2), " features, the layer expects ", w.size(1));
  const torch::Tensor z =
      in.data.reshape({slots * n, w.size(1)}).mm(w.t()).view({slots, n, w.size(0)});
  return Affine{StackedJet{z, in.t, in.xx}, layer->bias};
}

/// The affine map's jet with the bias added (the network's output layer).
StackedJet with_bias(const Affine& affine) {
  const torch::Tensor& z = affine.linear.data;
  if (!affine.bias.defined()) return affine.linear;
  return StackedJet{
      torch::cat({(z.select(0, 0) + affine.bias).unsqueeze(0), z.narrow(0, 1, z.size(0) - 1)}),
      affine.linear.t, affine.linear.xx};
}

/// sigma(z), sigma'(z) and (if `second`) sigma''(z); sigma'' undefined where it is zero (relu).
struct Derivatives {
  torch::Tensor a, d1, d2;
};

Derivatives derivatives(const torch::Tensor& z, Activation activation, bool second) {
  Derivatives d;
  switch (activation) {
    case Activation::kTanh:
      d.a = torch::tanh(z);
      d.d1 = 1 - d.a.square();
      if (second) d.d2 = -2 * d.a * d.d1;
      return d;
    case Activation::kSigmoid:
      d.a = torch::sigmoid(z);
      d.d1 = d.a * (1 - d.a);
      if (second) d.d2 = d.d1 * (1 - 2 * d.a);
      return d;
    case Activation::kSin:
      d.a = torch::sin(z);
      d.d1 = torch::cos(z);
      if (second) d.d2 = -d.a;
      return d;
    case Activation::kRelu:
      d.a = torch::relu(z);
      d.d1 = (z > 0).to(z.scalar_type());  // as autograd: 0 at z = 0; sigma'' = 0
      return d;
    case Activation::kGelu: {  // exact (erf) GELU, torch::gelu's default
      const double inv_sqrt2 = 1.0 / std::sqrt(2.0), inv_sqrt2pi = 0.3989422804014327;  // 1/sqrt(2 pi)
      d.a = torch::gelu(z);
      const torch::Tensor cdf = 0.5 * (1 + torch::erf(z * inv_sqrt2));
      const torch::Tensor pdf = torch::exp(-0.5 * z.square()) * inv_sqrt2pi;
      d.d1 = cdf + z * pdf;
      if (second) d.d2 = pdf * (2 - z.square());
      return d;
    }
    case Activation::kSoftplus: {  // beta 1, threshold 20: linear above, as torch::softplus
      d.a = torch::softplus(z);
      const torch::Tensor s = torch::sigmoid(z), linear_part = z > 20;
      d.d1 = torch::where(linear_part, torch::ones_like(s), s);
      if (second) d.d2 = torch::where(linear_part, torch::zeros_like(s), s * (1 - s));
      return d;
    }
  }
  throw InvalidArgument("forward_jet: no derivatives for activation " + to_string(activation));
}

// ---- tanh, fused (CPU) ------------------------------------------------------------------------
//
// The default PINN activation gets one elementwise pass forward and one backward instead of
// about a dozen tensor ops each way (the arithmetic: tanh_jet_kernels.hpp).

// `out` slot 0 already holds a = tanh(z_0 + b) (torch's vectorized tanh).
template <typename T, bool t, bool xx>
void tanh_jet_forward_kernel(const T* z, T* out, int64_t e) {
  at::parallel_for(0, e, 16384, [&](int64_t begin, int64_t end) {
    detail::tanh_jet_forward_range<T, t, xx>(z, out, e, begin, end);
  });
}

template <typename T, bool t, bool xx>
void tanh_jet_backward_kernel(const T* z, const T* out, const T* g, T* gz, int64_t e) {
  at::parallel_for(0, e, 16384, [&](int64_t begin, int64_t end) {
    detail::tanh_jet_backward_range<T, t, xx>(z, out, g, gz, e, begin, end);
  });
}

class TanhJet : public torch::autograd::Function<TanhJet> {
 public:
  /// z: (slots, n, w) contiguous CPU; bias: (w) or undefined.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& bias, bool t, bool xx) {
    const torch::Tensor zc = z.contiguous();
    const torch::Tensor b = bias.defined() ? bias.contiguous() : bias;
    torch::Tensor out = torch::empty_like(zc);
    const int64_t e = zc.size(1) * zc.size(2);
    torch::Tensor value = out.select(0, 0);
    if (b.defined()) {
      torch::add_out(value, zc.select(0, 0), b);
      value.tanh_();
    } else {
      torch::tanh_out(value, zc.select(0, 0));
    }
    AT_DISPATCH_FLOATING_TYPES(zc.scalar_type(), "tanh_jet_forward", [&] {
      const scalar_t* zp = zc.data_ptr<scalar_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      if (t && xx) tanh_jet_forward_kernel<scalar_t, true, true>(zp, op, e);
      else if (t) tanh_jet_forward_kernel<scalar_t, true, false>(zp, op, e);
      else if (xx) tanh_jet_forward_kernel<scalar_t, false, true>(zp, op, e);
      else tanh_jet_forward_kernel<scalar_t, false, false>(zp, op, e);
    });
    ctx->save_for_backward({zc, out});
    ctx->saved_data["t"] = t;
    ctx->saved_data["xx"] = xx;
    ctx->saved_data["bias"] = bias.defined();
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    DDTRAIN_CHECK(!torch::GradMode::is_enabled(), InvalidArgument,
                  "forward_jet: the fused tanh jet has no second derivative (create_graph)");
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& z = saved[0];
    const torch::Tensor& out = saved[1];
    const bool t = ctx->saved_data["t"].toBool(), xx = ctx->saved_data["xx"].toBool();
    if (!grads[0].defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    const torch::Tensor g = grads[0].contiguous();
    torch::Tensor gz = torch::empty_like(z);
    const int64_t e = z.size(1) * z.size(2);
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tanh_jet_backward", [&] {
      const scalar_t *zp = z.data_ptr<scalar_t>(), *op = out.data_ptr<scalar_t>(),
                     *gp = g.data_ptr<scalar_t>();
      scalar_t* gzp = gz.data_ptr<scalar_t>();
      if (t && xx) tanh_jet_backward_kernel<scalar_t, true, true>(zp, op, gp, gzp, e);
      else if (t) tanh_jet_backward_kernel<scalar_t, true, false>(zp, op, gp, gzp, e);
      else if (xx) tanh_jet_backward_kernel<scalar_t, false, true>(zp, op, gp, gzp, e);
      else tanh_jet_backward_kernel<scalar_t, false, false>(zp, op, gp, gzp, e);
    });
    torch::Tensor gb = ctx->saved_data["bias"].toBool() ? gz.select(0, 0).sum(0) : torch::Tensor();
    return {gz, gb, torch::Tensor(), torch::Tensor()};
  }
};

StackedJet activate(const StackedJet& z, const torch::Tensor& bias, Activation activation) {
  if (activation == Activation::kTanh && z.data.device().is_cpu() &&
      (z.data.scalar_type() == torch::kFloat || z.data.scalar_type() == torch::kDouble) &&
      (!bias.defined() || bias.scalar_type() == z.data.scalar_type())) {
    return StackedJet{TanhJet::apply(z.data, bias, z.t, z.xx), z.t, z.xx};
  }
  const torch::Tensor value = bias.defined() ? z.data.select(0, 0) + bias : z.data.select(0, 0);
  const Derivatives d = derivatives(value, activation, z.xx);
  std::vector<torch::Tensor> parts{d.a.unsqueeze(0),
                                   d.d1.unsqueeze(0) * z.data.narrow(0, 1, z.first_order())};
  if (z.xx) {
    const torch::Tensor z_x = z.data.select(0, 1), z_xx = z.data.select(0, z.slots() - 1);
    torch::Tensor a_xx = d.d1 * z_xx;
    if (d.d2.defined()) a_xx = a_xx + d.d2 * z_x.square();
    parts.push_back(a_xx.unsqueeze(0));
  }
  return StackedJet{torch::cat(parts), z.t, z.xx};
}

/// The jet of the elementwise product a * b (Leibniz): (ab)_x = a_x b + a b_x, likewise t,
/// (ab)_xx = a_xx b + 2 a_x b_x + a b_xx.
StackedJet product(const StackedJet& a, const StackedJet& b) {
  const torch::Tensor a0 = a.data.select(0, 0), b0 = b.data.select(0, 0);
  const int64_t first = a.first_order();
  std::vector<torch::Tensor> parts{(a0 * b0).unsqueeze(0),
                                   a.data.narrow(0, 1, first) * b0 + a0 * b.data.narrow(0, 1, first)};
  if (a.xx) {
    const int64_t last = a.slots() - 1;
    parts.push_back((a.data.select(0, last) * b0 + a0 * b.data.select(0, last) +
                     2 * a.data.select(0, 1) * b.data.select(0, 1))
                        .unsqueeze(0));
  }
  return StackedJet{torch::cat(parts), a.t, a.xx};
}

StackedJet activated_layer(const StackedJet& in, const torch::nn::Linear& layer, Activation activation) {
  const Affine z = linear(in, layer);
  return activate(z.linear, z.bias, activation);
}

}  // namespace

SpaceTimeJet coordinate_jet(const torch::Tensor& xt, bool with_t, bool with_xx) {
  DDTRAIN_CHECK(xt.dim() == 2 && xt.size(1) == 2, InvalidArgument,
                "coordinate_jet needs (n, 2) points (x, t)");
  SpaceTimeJet jet;
  jet.value = xt;
  const auto options = xt.options().requires_grad(false);
  jet.x = torch::tensor({1.0, 0.0}, options).expand({xt.size(0), 2});
  if (with_t) jet.t = torch::tensor({0.0, 1.0}, options).expand({xt.size(0), 2});
  if (with_xx) jet.xx = torch::zeros({xt.size(0), 2}, options);
  return jet;
}

SpaceTimeJet activate_jet(const SpaceTimeJet& z, Activation activation) {
  return unstack(activate(stack(z), torch::Tensor(), activation));
}

SpaceTimeJet forward_jet(FullyConnectedImpl& network, const SpaceTimeJet& input) {
  const Activation activation = network.options().activation;
  StackedJet h = stack(input);
  const auto& layers = network.linears();
  for (size_t l = 0; l + 1 < layers.size(); ++l) {
    const Affine z = linear(h, layers[l]);
    h = activate(z.linear, z.bias, activation);
  }
  return unstack(with_bias(linear(h, layers.back())));
}

SpaceTimeJet forward_jet(ResNetImpl& network, const SpaceTimeJet& input) {
  const Activation activation = network.options().activation;
  const auto& units = network.units();
  Affine z = linear(stack(input), units[0]);
  StackedJet h = activate(z.linear, z.bias, activation);
  for (size_t k = 1; k < units.size(); ++k) {
    z = linear(h, units[k]);
    h = StackedJet{h.data + activate(z.linear, z.bias, activation).data, h.t, h.xx};
  }
  return unstack(with_bias(linear(h, network.output())));
}

SpaceTimeJet forward_jet(ModifiedMlpImpl& network, const SpaceTimeJet& input) {
  const Activation activation = network.options().activation;
  StackedJet h = stack(input);
  const StackedJet u = activated_layer(h, network.encoder_u(), activation);
  const StackedJet v = activated_layer(h, network.encoder_v(), activation);
  const StackedJet u_minus_v{u.data - v.data, h.t, h.xx};
  for (const torch::nn::Linear& gate : network.gates())  // h = z u + (1 - z) v = v + z (u - v)
    h = StackedJet{v.data + product(activated_layer(h, gate, activation), u_minus_v).data, h.t, h.xx};
  return unstack(with_bias(linear(h, network.output())));
}

}  // namespace ddtrain
