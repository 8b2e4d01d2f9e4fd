#pragma once
// In-memory image classification data set, as produced by the IDX (MNIST / Fashion-MNIST) and
// CIFAR-10 readers. Plain C++ (no LibTorch) so readers can be tested and reused anywhere; a
// problem converts it to tensors once, after loading.
#include <cstdint>
#include <vector>

namespace ddtrain::data {

struct ImageDataset {
  int64_t count = 0;     ///< number of images (== labels.size())
  int64_t channels = 0;  ///< 1 for (Fashion-)MNIST, 3 for CIFAR-10
  int64_t height = 0;
  int64_t width = 0;
  /// count*channels*height*width raw bytes in NCHW order (image-major, then channel, row, column).
  std::vector<uint8_t> pixels;
  /// count class indices, each in [0, num_classes).
  std::vector<int64_t> labels;
  int64_t num_classes = 10;

  /// Bytes of one image (channels*height*width).
  int64_t image_size() const { return channels * height * width; }
};

}  // namespace ddtrain::data
