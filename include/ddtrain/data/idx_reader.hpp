#pragma once
// Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//
// Format (all header integers big-endian):
//   images: magic 0x00000803 (type ubyte, 3 dims), count, rows, cols, then count*rows*cols bytes
//   labels: magic 0x00000801 (type ubyte, 1 dim),  count, then count bytes
// Every malformed input (missing file, wrong magic or dimensionality, zero dimension, truncated
// or trailing data, count mismatch, label >= 10, corrupt gzip stream) throws ddtrain::IoError
// with a one-line message that names the offending file.
#include <string>

#include "ddtrain/data/dataset.hpp"

namespace ddtrain::data {

/// Reads an image file and a label file into a 1-channel data set with num_classes = 10.
/// Each file may be plain or gzip-compressed (detected from its first bytes, not its name).
ImageDataset read_idx_dataset(const std::string& images_path, const std::string& labels_path);

/// Loads the train (60000 images in the standard files) or test (t10k) split from `dir`, using
/// the standard file names train-images-idx3-ubyte / train-labels-idx1-ubyte /
/// t10k-images-idx3-ubyte / t10k-labels-idx1-ubyte, each with or without a ".gz" suffix, found
/// either directly in `dir` or in `dir`/raw (the torchvision layout). Works with the Debian
/// package dataset-fashion-mnist: load_mnist_split("/usr/share/datasets/fashion-mnist", true).
/// Throws IoError listing every path tried when a file is not found.
ImageDataset load_mnist_split(const std::string& dir, bool train);

}  // namespace ddtrain::data
