#pragma once
/// @file
/// Device names as users write them (`--device cpu | cuda | cuda:N`), shared by the CLI, the
/// benchmarks and embedding programs.
#include <torch/torch.h>

#include <string>

namespace ddtrain {

/// The device that `text` names: "cpu"; "cuda:N" (GPU N, which must exist); "cuda" (GPU
/// `local_rank` modulo the GPU count, so that the ranks of one node spread over its GPUs).
/// Throws InvalidArgument for any other text, and for a CUDA device when LibTorch has no CUDA
/// support or no GPU is present.
torch::Device parse_device(const std::string& text, int local_rank = 0);

}  // namespace ddtrain
