// CIFAR-10 binary reader. A record's pixel bytes are already channel-major (NCHW for one
// image), so records are copied as they are; only the label byte is split off and checked.
#include "ddtrain/data/cifar_reader.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ddtrain/error.hpp"

namespace ddtrain::data {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChannels = 3;
constexpr int64_t kSide = 32;
constexpr int64_t kImageBytes = kChannels * kSide * kSide;  // 3072
constexpr int64_t kRecordBytes = 1 + kImageBytes;           // 3073
constexpr int64_t kNumClasses = 10;
constexpr int kTrainBatches = 5;
constexpr const char* kSubfolder = "cifar-10-batches-bin";

std::string quote_path(const std::string& path) { return "'" + path + "'"; }

bool is_file(const fs::path& path) {
  std::error_code ec;  // the non-throwing overload: only IoError may leave this reader
  return fs::is_regular_file(path, ec);
}

/// Size of an existing batch file, checked to hold a whole, non-zero number of records.
uint64_t checked_batch_size(const std::string& path) {
  DDTRAIN_CHECK(is_file(path), IoError, "CIFAR-10 file ", quote_path(path),
                ": not found or not a regular file");
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  DDTRAIN_CHECK(!ec, IoError, "CIFAR-10 file ", quote_path(path), ": cannot get size (",
                ec.message(), ")");
  DDTRAIN_CHECK(size > 0, IoError, "CIFAR-10 file ", quote_path(path), ": empty file");
  DDTRAIN_CHECK(size % kRecordBytes == 0, IoError, "CIFAR-10 file ", quote_path(path), ": size ",
                size, " bytes is not a multiple of the ", kRecordBytes,
                "-byte record (1 label + 3072 pixels): short last record of ", size % kRecordBytes,
                " bytes");
  return size;
}

std::vector<uint8_t> read_whole_file(const std::string& path, uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  DDTRAIN_CHECK(in.is_open(), IoError, "CIFAR-10 file ", quote_path(path), ": cannot open (",
                std::strerror(errno), ")");
  std::vector<uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  // A short read here means the file changed or failed after its size was taken.
  DDTRAIN_CHECK(static_cast<uint64_t>(in.gcount()) == size, IoError, "CIFAR-10 file ",
                quote_path(path), ": read only ", in.gcount(), " of ", size, " bytes");
  return bytes;
}

/// Appends the records of one batch file to `dataset`.
void append_batch(const std::string& path, ImageDataset& dataset) {
  const std::vector<uint8_t> bytes = read_whole_file(path, checked_batch_size(path));
  const int64_t records = static_cast<int64_t>(bytes.size()) / kRecordBytes;
  dataset.pixels.reserve(dataset.pixels.size() + records * kImageBytes);
  dataset.labels.reserve(dataset.labels.size() + records);
  for (int64_t r = 0; r < records; ++r) {
    const uint8_t* record = bytes.data() + r * kRecordBytes;
    DDTRAIN_CHECK(record[0] < kNumClasses, IoError, "CIFAR-10 file ", quote_path(path), ": label ",
                  int{record[0]}, " of record ", r, " is out of range [0, ", kNumClasses, ")");
    dataset.labels.push_back(record[0]);
    dataset.pixels.insert(dataset.pixels.end(), record + 1, record + kRecordBytes);
  }
  dataset.count += records;
}

std::vector<std::string> split_file_names(bool train) {
  if (!train) return {"test_batch.bin"};
  std::vector<std::string> names;
  for (int i = 1; i <= kTrainBatches; ++i)
    names.push_back("data_batch_" + std::to_string(i) + ".bin");
  return names;
}

std::vector<std::string> paths_in(const fs::path& folder, const std::vector<std::string>& names) {
  std::vector<std::string> paths;
  for (const std::string& name : names) paths.push_back((folder / name).string());
  return paths;
}

bool all_exist(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    if (!is_file(path)) return false;
  }
  return true;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

/// Error for a split whose files are in neither folder: lists the expected names, and for a
/// folder holding only some of them, which ones are missing (the likely partial download).
IoError split_not_found(const std::vector<fs::path>& folders, const std::vector<std::string>& names,
                        bool train) {
  std::string message = std::string("CIFAR-10 ") + (train ? "train" : "test") +
                        " split not found: expected " + join(names) + " in " +
                        quote_path(folders[0].string()) + " or " + quote_path(folders[1].string());
  for (const fs::path& folder : folders) {
    std::vector<std::string> missing;
    for (const std::string& path : paths_in(folder, names)) {
      if (!is_file(path)) missing.push_back(path);
    }
    if (missing.size() < names.size()) {
      message += "; missing: " + join(missing);
      break;
    }
  }
  return IoError(message);
}

}  // namespace

ImageDataset read_cifar_batches(const std::vector<std::string>& files) {
  DDTRAIN_CHECK(!files.empty(), IoError, "CIFAR-10: no batch files given");
  ImageDataset dataset;
  dataset.channels = kChannels;
  dataset.height = kSide;
  dataset.width = kSide;
  dataset.num_classes = kNumClasses;
  for (const std::string& path : files) append_batch(path, dataset);
  return dataset;
}

ImageDataset load_cifar10_split(const std::string& dir, bool train) {
  const std::vector<std::string> names = split_file_names(train);
  const std::vector<fs::path> folders = {fs::path(dir), fs::path(dir) / kSubfolder};
  for (const fs::path& folder : folders) {
    const std::vector<std::string> paths = paths_in(folder, names);
    if (all_exist(paths)) return read_cifar_batches(paths);
  }
  throw split_not_found(folders, names, train);
}

}  // namespace ddtrain::data
