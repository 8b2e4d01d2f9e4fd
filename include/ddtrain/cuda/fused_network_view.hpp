#pragma once
/// @file
/// A tanh network and the Allen–Cahn options of the fused loss as raw pointers and numbers:
/// what the CUDA kernels of the fused Allen–Cahn loss (ddtrain/cuda/fused_allen_cahn.hpp) and
/// their plain C++ host executor read. Needs neither LibTorch nor CUDA.
#include <cstdint>

namespace ddtrain::gpu {

/// The most hidden layers a FusedNetworkView describes (the view is passed to kernels by value).
constexpr int kFusedMaxHiddenLayers = 32;

/// A tanh network of `layers` hidden layers of `width` units on 2K + 1 Fourier features
/// (cos(k pi x), sin(k pi x) for k = 1..K, then t; K = `modes`) with one linear output. Weights
/// are (out x in) row-major, as torch::nn::Linear stores them. With `residual` (a ResNet) hidden
/// layer l >= 1 computes h_l = h_{l-1} + tanh(W_l h_{l-1} + b_l); otherwise, and for l = 0,
/// h_l = tanh(W_l h_{l-1} + b_l). The pointers are host or device pointers, as the caller needs.
template <typename T>
struct FusedNetworkView {
  int layers = 0;         ///< hidden layers, 1..kFusedMaxHiddenLayers
  int width = 0;          ///< units per hidden layer
  int modes = 0;          ///< K >= 1: the first layer takes 2K + 1 inputs
  bool residual = false;  ///< ResNet skip connections on hidden layers 1..layers-1
  const T* weight[kFusedMaxHiddenLayers] = {};  ///< hidden layer l: (width x inputs of layer l)
  const T* bias[kFusedMaxHiddenLayers] = {};    ///< hidden layer l: (width)
  const T* output_weight = nullptr;             ///< (1 x width)
  const T* output_bias = nullptr;               ///< (1)
};

/// The Allen–Cahn residual's constants (the fields of FusedAllenCahnOptions that the loss's
/// mathematics uses): r = u_t - diffusion u_xx + reaction (u^3 - u) with the carrier
/// u = (x^2 cos(pi x) + corner) e^{-ic_decay t} + t N.
struct FusedAllenCahnPointOptions {
  double diffusion = 1e-4;    ///< nu
  double reaction = 5.0;      ///< the reaction coefficient
  double ic_decay = 0.0;      ///< c of the carrier's factor e^{-c t}
  bool ic_smoothing = false;  ///< add the heat-smoothed corner of the initial condition
};

}  // namespace ddtrain::gpu
