#include "ddtrain/device.hpp"

#include "ddtrain/error.hpp"

namespace ddtrain {

torch::Device parse_device(const std::string& text, int local_rank) {
  if (text == "cpu") return torch::kCPU;
  DDTRAIN_CHECK(text == "cuda" || text.rfind("cuda:", 0) == 0, InvalidArgument, "--device '", text,
                "' is not a device (accepted: cpu, cuda, cuda:N)");
  int index = -1;
  if (text != "cuda") {
    try {
      size_t used = 0;
      index = std::stoi(text.substr(5), &used);
      if (used != text.size() - 5) index = -1;
    } catch (const std::exception&) {
    }
    DDTRAIN_CHECK(index >= 0, InvalidArgument, "--device '", text,
                  "' is not a device (accepted: cpu, cuda, cuda:N with N a GPU index)");
  }
  DDTRAIN_CHECK(torch::cuda::is_available(), InvalidArgument, "--device ", text,
                ": no CUDA device is available (this LibTorch has no CUDA support or no GPU is present)");
  const int count = static_cast<int>(torch::cuda::device_count());
  if (text == "cuda") index = (local_rank < 0 ? 0 : local_rank) % count;
  DDTRAIN_CHECK(index < count, InvalidArgument, "--device ", text, ": no such GPU (", count, " present)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace ddtrain
