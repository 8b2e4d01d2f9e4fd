#pragma once
// Reader for the binary version of CIFAR-10 ("cifar-10-batches-bin").
//
// Each batch file is a sequence of 3073-byte records: 1 label byte (0..9) followed by 3072 pixel
// bytes, 3 channels x 32 rows x 32 columns, channel-major (all red, then green, then blue), which
// is exactly NCHW. Malformed input (missing file, size not a multiple of 3073, empty file,
// label >= 10) throws ddtrain::IoError with a one-line message naming the file.
#include <string>
#include <vector>

#include "ddtrain/data/dataset.hpp"

namespace ddtrain::data {

/// Concatenates the records of `files`, in order, into one 3x32x32 data set (num_classes = 10).
ImageDataset read_cifar_batches(const std::vector<std::string>& files);

/// Loads the train split (data_batch_1.bin .. data_batch_5.bin) or the test split
/// (test_batch.bin) from `dir`, or from `dir`/cifar-10-batches-bin when the files are not
/// directly in `dir` (the layout the official archive unpacks to).
/// Throws IoError listing the expected files when they are not found.
ImageDataset load_cifar10_split(const std::string& dir, bool train);

}  // namespace ddtrain::data
