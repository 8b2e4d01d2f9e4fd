// IDX reader (MNIST / Fashion-MNIST). All input goes through zlib's gz* functions: gzread
// decompresses gzip files and passes plain files through unchanged, so one code path serves
// both; the gzip magic bytes are only used to word error messages.
#include "ddtrain/data/idx_reader.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "ddtrain/error.hpp"

namespace ddtrain::data {
namespace {

namespace fs = std::filesystem;

constexpr uint8_t kUbyteType = 0x08;
constexpr int kImageDims = 3;
constexpr int kLabelDims = 1;
constexpr int64_t kNumClasses = 10;
// gzread takes an unsigned and returns an int, so large payloads are read in chunks.
constexpr size_t kReadChunk = size_t{1} << 20;
// Upper bound on memory reserved up front from an (untrusted) header; beyond it the buffer only
// grows as data actually arrives, so a corrupt header cannot trigger a huge allocation.
constexpr size_t kMaxReserve = size_t{1} << 28;

std::string hex32(uint32_t value) {
  static const char* digits = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out += digits[(value >> shift) & 0xF];
  return out;
}

std::string quote_path(const std::string& path) { return "'" + path + "'"; }

bool is_file(const fs::path& path) {
  std::error_code ec;  // the non-throwing overload: only IoError may leave this reader
  return fs::is_regular_file(path, ec);
}

/// True when the file starts with the gzip magic bytes 1f 8b.
bool has_gzip_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 2> head{};
  in.read(reinterpret_cast<char*>(head.data()), head.size());
  return in.gcount() == 2 && head[0] == 0x1f && head[1] == 0x8b;
}

/// One open IDX file. Every zlib return value is checked; failures become IoError naming the
/// file. The destructor closes without checking (it only runs on the error path); the success
/// path calls close() so that a gzclose failure is reported.
class IdxFile {
 public:
  explicit IdxFile(std::string path) : path_(std::move(path)) {
    DDTRAIN_CHECK(is_file(path_), IoError, "IDX file ", quote_path(path_),
                  ": not found or not a regular file");
    gzip_ = has_gzip_magic(path_);
    errno = 0;
    file_ = gzopen(path_.c_str(), "rb");
    DDTRAIN_CHECK(file_ != nullptr, IoError, "IDX file ", quote_path(path_), ": cannot open (",
                  errno != 0 ? std::strerror(errno) : "zlib out of memory", ")");
    // A larger buffer than zlib's 8 KiB default cuts the number of read syscalls; failure here
    // only means the default stays, but it is still a zlib call whose result we check.
    DDTRAIN_CHECK(gzbuffer(file_, 128 * 1024) == 0, IoError, "IDX file ", quote_path(path_),
                  ": gzbuffer failed");
  }
  IdxFile(const IdxFile&) = delete;
  IdxFile& operator=(const IdxFile&) = delete;
  ~IdxFile() {
    if (file_ != nullptr) gzclose(file_);
  }

  /// Reads the magic number and dimension sizes, checking type ubyte, `dims` dimensions and no
  /// zero size. Returns the sizes.
  std::vector<uint32_t> read_header(int dims) {
    const uint32_t expected_magic = (uint32_t{kUbyteType} << 8) | static_cast<uint32_t>(dims);
    const uint32_t magic = read_be32("magic number");
    // The magic is 00 00 <type> <ndims>; a correct prefix with another ndims gets the more
    // specific message.
    const bool ubyte_prefix = (magic >> 8) == kUbyteType;
    DDTRAIN_CHECK(!ubyte_prefix || (magic & 0xFF) == static_cast<uint32_t>(dims), IoError,
                  "IDX file ", quote_path(path_), ": wrong number of dimensions: expected ", dims,
                  ", found ", (magic & 0xFF), " (magic ", hex32(magic), ")");
    DDTRAIN_CHECK(magic == expected_magic, IoError, "IDX file ", quote_path(path_),
                  ": wrong magic number: expected ", hex32(expected_magic), ", found ",
                  hex32(magic));
    std::vector<uint32_t> sizes;
    for (int d = 0; d < dims; ++d) {
      const uint32_t size = read_be32("dimension size");
      DDTRAIN_CHECK(size != 0, IoError, "IDX file ", quote_path(path_), ": dimension ", d,
                    " has size 0");
      sizes.push_back(size);
    }
    return sizes;
  }

  /// Reads exactly `count` payload bytes; fewer means the file is truncated.
  std::vector<uint8_t> read_payload(uint64_t count) {
    std::vector<uint8_t> data;
    data.reserve(static_cast<size_t>(std::min<uint64_t>(count, kMaxReserve)));
    while (data.size() < count) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(count - data.size(), kReadChunk));
      const size_t old_size = data.size();
      data.resize(old_size + want);
      const int got = read_some(data.data() + old_size, want);
      data.resize(old_size + static_cast<size_t>(got));
      if (static_cast<size_t>(got) < want) throw truncated_payload(count, data.size());
    }
    return data;
  }

  /// Checks that nothing follows the payload. Reading to the end also makes zlib verify the
  /// gzip CRC and length trailer, so a corrupt stream is caught even if the payload decoded.
  void expect_end() {
    unsigned char extra = 0;
    const int got = read_some(&extra, 1);
    DDTRAIN_CHECK(got == 0, IoError, "IDX file ", quote_path(path_),
                  ": trailing bytes after the data the header describes");
    DDTRAIN_CHECK(!gzip_stream_cut(), IoError, "IDX file ", quote_path(path_),
                  ": truncated gzip stream (zlib: ", zlib_message(), ")");
  }

  /// Closes the file, reporting a failing gzclose.
  void close() {
    const int status = gzclose(file_);
    file_ = nullptr;
    DDTRAIN_CHECK(status == Z_OK, IoError, "IDX file ", quote_path(path_),
                  ": error while closing (zlib status ", status, ")");
  }

 private:
  uint32_t read_be32(const char* what) {
    std::array<unsigned char, 4> bytes{};
    const int got = read_some(bytes.data(), bytes.size());
    DDTRAIN_CHECK(got == 4, IoError, "IDX file ", quote_path(path_), ": truncated header (missing ",
                  what, ")");
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
           uint32_t{bytes[3]};
  }

  /// gzread with its hard errors (I/O error, corrupt data, CRC mismatch: return -1) turned into
  /// IoError. Returns the byte count, which is short at end of file; a gzip stream that ends
  /// before its trailer is not a hard error for zlib but is visible through gzip_stream_cut().
  int read_some(void* buffer, size_t size) {
    const int got = gzread(file_, buffer, static_cast<unsigned>(size));
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    if (got >= 0 && (errnum == Z_OK || errnum == Z_BUF_ERROR)) return got;
    // Z_ERRNO is the operating system's read failing; anything else is zlib rejecting the data.
    throw IoError(detail::concat(
        "IDX file ", quote_path(path_),
        errnum == Z_ERRNO ? ": read error (" : ": corrupt gzip data (zlib: ", zlib_message(), ")"));
  }

  /// True once zlib has met the end of the file in the middle of a gzip stream.
  bool gzip_stream_cut() const {
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    return errnum == Z_BUF_ERROR;
  }

  std::string zlib_message() const {
    int errnum = Z_OK;
    const char* raw = gzerror(file_, &errnum);
    if (errnum == Z_ERRNO) return std::strerror(errno);
    std::string message = raw != nullptr ? raw : "unknown error";
    // zlib prefixes its messages with "<path>: "; our messages already name the file.
    const std::string prefix = path_ + ": ";
    if (message.compare(0, prefix.size(), prefix) == 0) message.erase(0, prefix.size());
    return message;
  }

  /// The exact count is known for plain files only: for gzip, zlib may drop the bytes it
  /// decoded in the failing call, so no count is claimed.
  IoError truncated_payload(uint64_t promised, size_t have) const {
    if (gzip_) {
      return IoError(detail::concat(
          "IDX file ", quote_path(path_), ": truncated: the header promises ", promised,
          " data bytes but the gzip stream ends early (zlib: ", zlib_message(), ")"));
    }
    return IoError(detail::concat("IDX file ", quote_path(path_),
                                  ": truncated: the header promises ", promised,
                                  " data bytes but only ", have, " follow"));
  }

  std::string path_;
  gzFile file_ = nullptr;
  bool gzip_ = false;
};

/// Product of the sizes. Only a corrupt header can exceed the bound; refusing it here keeps the
/// uint64 product from overflowing.
uint64_t checked_product(const std::vector<uint32_t>& sizes, const std::string& path) {
  constexpr uint64_t kMaxPayload = uint64_t{1} << 48;
  uint64_t product = 1;
  for (uint32_t size : sizes) {
    DDTRAIN_CHECK(product <= kMaxPayload / size, IoError, "IDX file ", quote_path(path),
                  ": dimension sizes multiply to an implausible size");
    product *= size;
  }
  return product;
}

struct IdxImages {
  int64_t count = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
};

IdxImages read_images(const std::string& path) {
  IdxFile file(path);
  const std::vector<uint32_t> sizes = file.read_header(kImageDims);
  IdxImages images;
  images.count = sizes[0];
  images.height = sizes[1];
  images.width = sizes[2];
  images.pixels = file.read_payload(checked_product(sizes, path));
  file.expect_end();
  file.close();
  return images;
}

std::vector<int64_t> read_labels(const std::string& path) {
  IdxFile file(path);
  const std::vector<uint32_t> sizes = file.read_header(kLabelDims);
  const std::vector<uint8_t> bytes = file.read_payload(sizes[0]);
  file.expect_end();
  file.close();
  for (size_t i = 0; i < bytes.size(); ++i) {
    DDTRAIN_CHECK(bytes[i] < kNumClasses, IoError, "IDX file ", quote_path(path), ": label ",
                  int{bytes[i]}, " at index ", i, " is out of range [0, ", kNumClasses, ")");
  }
  return std::vector<int64_t>(bytes.begin(), bytes.end());
}

/// Candidate locations of one standard file: `dir` then `dir`/raw, plain name before ".gz".
std::vector<fs::path> candidate_paths(const std::string& dir, const std::string& name) {
  std::vector<fs::path> paths;
  for (const fs::path& folder : {fs::path(dir), fs::path(dir) / "raw"}) {
    paths.push_back(folder / name);
    paths.push_back(folder / (name + ".gz"));
  }
  return paths;
}

std::string find_standard_file(const std::string& dir, const std::string& name) {
  const std::vector<fs::path> candidates = candidate_paths(dir, name);
  for (const fs::path& path : candidates) {
    if (is_file(path)) return path.string();
  }
  std::string tried;
  for (const fs::path& path : candidates) tried += (tried.empty() ? "" : ", ") + path.string();
  std::error_code ec;
  const bool dir_exists = fs::is_directory(dir, ec);
  throw IoError(detail::concat(
      "MNIST-format file ", quote_path(name), " not found",
      dir_exists ? "" : " (directory " + quote_path(dir) + " does not exist)", "; tried: ", tried));
}

}  // namespace

ImageDataset read_idx_dataset(const std::string& images_path, const std::string& labels_path) {
  IdxImages images = read_images(images_path);
  std::vector<int64_t> labels = read_labels(labels_path);
  DDTRAIN_CHECK(static_cast<int64_t>(labels.size()) == images.count, IoError, "IDX files ",
                quote_path(images_path), " and ", quote_path(labels_path), ": image count ",
                images.count, " does not match label count ", labels.size());
  ImageDataset dataset;
  dataset.count = images.count;
  dataset.channels = 1;
  dataset.height = images.height;
  dataset.width = images.width;
  dataset.pixels = std::move(images.pixels);
  dataset.labels = std::move(labels);
  dataset.num_classes = kNumClasses;
  return dataset;
}

ImageDataset load_mnist_split(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images = find_standard_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels = find_standard_file(dir, prefix + "-labels-idx1-ubyte");
  return read_idx_dataset(images, labels);
}

}  // namespace ddtrain::data
