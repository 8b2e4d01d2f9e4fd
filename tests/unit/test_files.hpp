#pragma once
// Writers of the real on-disk formats of the image data sets (IDX of MNIST / Fashion-MNIST,
// plain or gzip; CIFAR-10 binary batches), shared by the tests that need such files.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// In the unnamed namespace of each test file (inline: unused ones do not warn).
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// ---- writers for the real formats ---------------------------------------------------------

inline void append_be32(Bytes& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

inline Bytes idx_bytes(uint32_t magic, const std::vector<uint32_t>& sizes, const Bytes& payload) {
  Bytes out;
  append_be32(out, magic);
  for (uint32_t size : sizes) append_be32(out, size);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

inline void write_plain(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  ASSERT_TRUE(out.is_open()) << path;
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_gzip(const fs::path& path, const Bytes& bytes) {
  gzFile file = gzopen(path.string().c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(file), Z_OK);
}

inline Bytes read_plain(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Deterministic, position-dependent pixel values so any misplaced byte is detected.
inline Bytes pattern(size_t count, unsigned seed) {
  Bytes out(count);
  for (size_t i = 0; i < count; ++i)
    out[i] = static_cast<uint8_t>((i * 37 + seed * 11 + i / 7) % 256);
  return out;
}
// ---- CIFAR-10 -----------------------------------------------------------------------------

constexpr size_t kCifarImage = 3 * 32 * 32;
constexpr size_t kCifarRecord = 1 + kCifarImage;

struct CifarBatch {
  Bytes labels;
  std::vector<Bytes> images;
  Bytes file() const {
    Bytes out;
    for (size_t r = 0; r < labels.size(); ++r) {
      out.push_back(labels[r]);
      out.insert(out.end(), images[r].begin(), images[r].end());
    }
    return out;
  }
};

inline CifarBatch cifar_batch(const Bytes& labels, unsigned seed) {
  CifarBatch batch;
  batch.labels = labels;
  for (size_t r = 0; r < labels.size(); ++r)
    batch.images.push_back(pattern(kCifarImage, seed + static_cast<unsigned>(r)));
  return batch;
}

}  // namespace
