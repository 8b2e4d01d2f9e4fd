#pragma once
// Taylor-mode (forward) derivatives of a network with respect to its space-time inputs: the
// value and its x, t and xx derivatives pushed through the network in ONE forward pass, so a
// PINN residual needs no nested autograd and its parameter gradient is one ordinary backward.
//
// Every network ddtrain ships, factorized weights (WeightFactorization) included.
// Per Linear layer the value h and its tangents h_x, h_t, h_xx are stacked along a leading dim
// and multiplied by W^T as one matmul (the bias goes to the value only); per activation sigma
// the chain rule
//   a = sigma(z),  a_x = sigma'(z) z_x,  a_t = sigma'(z) z_t,  a_xx = sigma'(z) z_xx + sigma''(z) z_x^2
// with sigma', sigma'' written in terms of sigma where that is cheaper (tanh: 1 - a^2, -2 a a').
// Every ddtrain::Activation is supported (relu: sigma'' = 0, as autograd has it).
#include <torch/torch.h>

#include "ddtrain/models.hpp"
#include "ddtrain/models/resnet.hpp"

namespace ddtrain {

/// A field and its derivatives with respect to the space-time coordinates (x, t), all of shape
/// (n, k). `value` and `x` are always defined; `t` and `xx` are undefined tensors when not
/// propagated (then they cost nothing).
struct SpaceTimeJet {
  torch::Tensor value;  ///< f
  torch::Tensor x;      ///< df/dx
  torch::Tensor t;      ///< df/dt, or undefined
  torch::Tensor xx;     ///< d2f/dx2, or undefined

  bool has_t() const { return t.defined(); }
  bool has_xx() const { return xx.defined(); }
};

/// The jet of the coordinates themselves at points xt (n, 2) = (x, t): value xt, x = (1, 0),
/// t = (0, 1) if `with_t`, xx = 0 if `with_xx`.
SpaceTimeJet coordinate_jet(const torch::Tensor& xt, bool with_t = true, bool with_xx = true);

/// The jet of sigma(z) from the jet of z, for every Activation.
SpaceTimeJet activate_jet(const SpaceTimeJet& z, Activation activation);

/// The network's output jet from its input jet (same fields defined as in `input`), by one
/// stacked forward pass; differentiable with respect to the parameters (and the input jet).
/// Throws InvalidArgument if the input jet's width is not the network's input count.
SpaceTimeJet forward_jet(FullyConnectedImpl& network, const SpaceTimeJet& input);
SpaceTimeJet forward_jet(ResNetImpl& network, const SpaceTimeJet& input);
SpaceTimeJet forward_jet(ModifiedMlpImpl& network, const SpaceTimeJet& input);

}  // namespace ddtrain
