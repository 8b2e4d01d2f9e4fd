#pragma once
/// @file
/// The scalars a solver decides on, read from the tensors' device in one copy.
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <vector>

namespace ddtrain {

/// The values of 0-dim tensors (one device, one dtype) as doubles, read in one device-to-host
/// copy: on a GPU one wait for the device where item() would wait once per value. Each value
/// equals the tensor's item<double>().
template <typename... Scalars>
std::array<double, sizeof...(Scalars)> host_values(const Scalars&... scalars) {
  const std::vector<torch::Tensor> list{scalars...};
  const torch::Tensor host = torch::stack(list).to(torch::kCPU).to(torch::kFloat64).contiguous();
  std::array<double, sizeof...(Scalars)> out{};
  std::copy_n(host.data_ptr<double>(), out.size(), out.begin());
  return out;
}

}  // namespace ddtrain
