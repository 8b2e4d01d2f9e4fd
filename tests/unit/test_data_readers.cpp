// Tests of the IDX (MNIST / Fashion-MNIST) and CIFAR-10 readers. Every input is written here in
// the real on-disk format (plain and gzip), read back and compared byte by byte; each malformed
// variant must raise IoError with a one-line message naming the file.
#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ddtrain/data/cifar_reader.hpp"
#include "ddtrain/data/dataset.hpp"
#include "ddtrain/data/idx_reader.hpp"
#include "ddtrain/error.hpp"
#include "remove_tree.hpp"
#include "test_files.hpp"

namespace {

namespace fs = std::filesystem;
using ddtrain::IoError;
using ddtrain::data::ImageDataset;
using Bytes = std::vector<uint8_t>;


struct IdxSample {
  uint32_t count = 5, rows = 4, cols = 3;
  Bytes pixels = pattern(5 * 4 * 3, 1);
  Bytes labels = {3, 0, 9, 7, 1};
  Bytes image_file() const { return idx_bytes(0x00000803, {count, rows, cols}, pixels); }
  Bytes label_file() const { return idx_bytes(0x00000801, {count}, labels); }
};

void expect_dataset(const ImageDataset& data, const IdxSample& sample) {
  EXPECT_EQ(data.count, sample.count);
  EXPECT_EQ(data.channels, 1);
  EXPECT_EQ(data.height, sample.rows);
  EXPECT_EQ(data.width, sample.cols);
  EXPECT_EQ(data.num_classes, 10);
  EXPECT_EQ(data.pixels, sample.pixels);
  ASSERT_EQ(data.labels.size(), sample.labels.size());
  for (size_t i = 0; i < sample.labels.size(); ++i)
    EXPECT_EQ(data.labels[i], sample.labels[i]) << i;
}

/// Runs `action`, which must throw IoError whose single-line message contains every `needle`.
void expect_io_error(const std::function<void()>& action, const std::vector<std::string>& needles) {
  try {
    action();
    ADD_FAILURE() << "expected ddtrain::IoError, nothing was thrown";
  } catch (const IoError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "message is not one line: " << message;
    for (const std::string& needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos)
          << "message lacks '" << needle << "': " << message;
    }
  } catch (const std::exception& other) {
    ADD_FAILURE() << "expected ddtrain::IoError, got another exception: " << other.what();
  }
}

class DataReaders : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::random_device random;
    dir_ = fs::temp_directory_path() /
           ("ddtrain_data_" + std::string(info->name()) + "_" + std::to_string(random()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    remove_tree(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  /// Writes the sample's two IDX files (plain or gzip) and returns the dataset read from them.
  ImageDataset write_and_read(const IdxSample& sample, bool gzip_images, bool gzip_labels) {
    const std::string images = path(gzip_images ? "img.gz" : "img");
    const std::string labels = path(gzip_labels ? "lbl.gz" : "lbl");
    if (gzip_images)
      write_gzip(images, sample.image_file());
    else
      write_plain(images, sample.image_file());
    if (gzip_labels)
      write_gzip(labels, sample.label_file());
    else
      write_plain(labels, sample.label_file());
    return ddtrain::data::read_idx_dataset(images, labels);
  }

  /// Writes a valid label file for `count` images and expects reading `images` with it to fail.
  void expect_image_file_error(const Bytes& image_file, const std::vector<std::string>& needles,
                               uint32_t label_count = 5, bool gzip = false) {
    const std::string images = path(gzip ? "bad-images.gz" : "bad-images");
    const std::string labels = path("labels");
    if (gzip)
      write_gzip(images, image_file);
    else
      write_plain(images, image_file);
    write_plain(labels, idx_bytes(0x00000801, {label_count}, Bytes(label_count, 1)));
    std::vector<std::string> all = needles;
    all.push_back("'" + images + "'");  // named, and quoted like every other message
    expect_io_error([&] { ddtrain::data::read_idx_dataset(images, labels); }, all);
  }

  void expect_label_file_error(const Bytes& label_file, const std::vector<std::string>& needles) {
    const std::string images = path("images");
    const std::string labels = path("bad-labels");
    write_plain(images, IdxSample().image_file());
    write_plain(labels, label_file);
    std::vector<std::string> all = needles;
    all.push_back("'" + labels + "'");
    expect_io_error([&] { ddtrain::data::read_idx_dataset(images, labels); }, all);
  }

  fs::path dir_;
};

// ---- IDX: valid files ---------------------------------------------------------------------

TEST_F(DataReaders, IdxPlainRoundTrip) {
  expect_dataset(write_and_read(IdxSample(), false, false), IdxSample());
}

TEST_F(DataReaders, IdxGzipRoundTrip) {
  expect_dataset(write_and_read(IdxSample(), true, true), IdxSample());
}

TEST_F(DataReaders, IdxMixedPlainAndGzip) {
  expect_dataset(write_and_read(IdxSample(), true, false), IdxSample());
  expect_dataset(write_and_read(IdxSample(), false, true), IdxSample());
}

TEST_F(DataReaders, IdxLargerThanOneReadChunk) {
  // 1500 images of 28x28 = 1.2 MB: more than the reader's 1 MiB chunk, so chunking is covered.
  IdxSample sample;
  sample.count = 1500;
  sample.rows = 28;
  sample.cols = 28;
  sample.pixels = pattern(size_t{1500} * 28 * 28, 2);
  sample.labels.resize(1500);
  for (size_t i = 0; i < sample.labels.size(); ++i) sample.labels[i] = static_cast<uint8_t>(i % 10);
  expect_dataset(write_and_read(sample, false, false), sample);
  expect_dataset(write_and_read(sample, true, true), sample);
}

TEST_F(DataReaders, GzipDetectedByContentNotName) {
  // A gzip file without ".gz" and a plain file named ".gz" both read correctly.
  const IdxSample sample;
  write_gzip(path("images"), sample.image_file());
  write_plain(path("labels.gz"), sample.label_file());
  expect_dataset(ddtrain::data::read_idx_dataset(path("images"), path("labels.gz")), sample);
}

TEST_F(DataReaders, LoadMnistSplitStandardNames) {
  IdxSample train;
  IdxSample test;
  test.count = 2;
  test.pixels = pattern(2 * 4 * 3, 3);
  test.labels = {8, 2};
  write_plain(path("train-images-idx3-ubyte"), train.image_file());
  write_gzip(path("train-labels-idx1-ubyte.gz"), train.label_file());
  write_gzip(path("t10k-images-idx3-ubyte.gz"), test.image_file());
  write_gzip(path("t10k-labels-idx1-ubyte.gz"), test.label_file());
  expect_dataset(ddtrain::data::load_mnist_split(dir_.string(), true), train);
  expect_dataset(ddtrain::data::load_mnist_split(dir_.string(), false), test);
}

TEST_F(DataReaders, LoadMnistSplitRawSubfolder) {
  const IdxSample sample;
  fs::create_directories(dir_ / "raw");
  write_gzip(dir_ / "raw" / "t10k-images-idx3-ubyte.gz", sample.image_file());
  write_plain(dir_ / "raw" / "t10k-labels-idx1-ubyte", sample.label_file());
  expect_dataset(ddtrain::data::load_mnist_split(dir_.string(), false), sample);
}

TEST_F(DataReaders, LoadMnistSplitMissingListsNamesTried) {
  write_plain(path("train-labels-idx1-ubyte"), IdxSample().label_file());
  expect_io_error([&] { ddtrain::data::load_mnist_split(dir_.string(), true); },
                  {path("train-images-idx3-ubyte"), path("train-images-idx3-ubyte.gz"),
                   (dir_ / "raw" / "train-images-idx3-ubyte.gz").string()});
  expect_io_error([&] { ddtrain::data::load_mnist_split(path("nowhere"), false); },
                  {"t10k-images-idx3-ubyte", "does not exist"});
}

// ---- IDX: errors --------------------------------------------------------------------------

TEST_F(DataReaders, IdxMissingFile) {
  write_plain(path("labels"), IdxSample().label_file());
  expect_io_error([&] { ddtrain::data::read_idx_dataset(path("no-such-file"), path("labels")); },
                  {path("no-such-file"), "not found"});
}

TEST_F(DataReaders, IdxPathIsADirectory) {
  fs::create_directories(dir_ / "folder");
  write_plain(path("labels"), IdxSample().label_file());
  expect_io_error([&] { ddtrain::data::read_idx_dataset(path("folder"), path("labels")); },
                  {path("folder")});
}

TEST_F(DataReaders, IdxWrongMagic) {
  const IdxSample sample;
  expect_image_file_error(idx_bytes(0x12345678, {5, 4, 3}, sample.pixels),
                          {"magic", "0x00000803", "0x12345678"});
  // A label file given as the image file: type ubyte but one dimension.
  expect_image_file_error(sample.label_file(), {"dimensions", "expected 3", "found 1"});
  // Type other than ubyte (0x0D = float).
  expect_image_file_error(idx_bytes(0x00000D03, {5, 4, 3}, sample.pixels),
                          {"magic", "0x00000803", "0x00000d03"});
  expect_label_file_error(idx_bytes(0x00000803, {5, 1, 1}, sample.labels),
                          {"dimensions", "expected 1", "found 3"});
  expect_label_file_error(idx_bytes(0xdeadbeef, {5}, sample.labels),
                          {"magic", "0x00000801", "0xdeadbeef"});
}

TEST_F(DataReaders, IdxWrongMagicInGzip) {
  expect_image_file_error(idx_bytes(0x00000802, {5, 4}, Bytes(20)), {"expected 3", "found 2"}, 5,
                          true);
}

TEST_F(DataReaders, IdxZeroDimension) {
  expect_image_file_error(idx_bytes(0x00000803, {5, 0, 3}, {}), {"dimension 1", "size 0"});
  expect_image_file_error(idx_bytes(0x00000803, {0, 4, 3}, {}), {"dimension 0", "size 0"});
  expect_label_file_error(idx_bytes(0x00000801, {0}, {}), {"dimension 0", "size 0"});
}

TEST_F(DataReaders, IdxTruncatedPlain) {
  IdxSample sample;
  sample.pixels.resize(sample.pixels.size() - 7);
  expect_image_file_error(sample.image_file(), {"truncated", "60 data bytes", "only 53"});
  sample = IdxSample();
  sample.labels.pop_back();
  expect_label_file_error(sample.label_file(), {"truncated", "5 data bytes", "only 4"});
  expect_image_file_error(Bytes{0x00, 0x00}, {"truncated header"});
  expect_image_file_error(idx_bytes(0x00000803, {5, 4}, {}), {"truncated header"});
  expect_image_file_error(Bytes{}, {"truncated header"});
}

TEST_F(DataReaders, IdxTruncatedGzipPayload) {
  IdxSample sample;
  sample.pixels.resize(30);  // a complete gzip stream whose content is short
  expect_image_file_error(sample.image_file(), {"truncated", "60 data bytes"}, 5, true);
}

TEST_F(DataReaders, IdxCutGzipStream) {
  // A gzip stream cut in the middle: zlib reports an unexpected end of file.
  IdxSample sample;
  sample.count = 200;
  sample.rows = sample.cols = 28;
  sample.pixels = pattern(size_t{200} * 28 * 28, 5);
  write_gzip(path("full.gz"), sample.image_file());
  Bytes compressed = read_plain(path("full.gz"));
  ASSERT_GT(compressed.size(), 100u);
  compressed.resize(compressed.size() / 2);
  expect_image_file_error(compressed, {"truncated"}, 200);
  // Only the 8-byte gzip trailer (CRC, length) missing: the payload decodes, the stream does not
  // end.
  compressed = read_plain(path("full.gz"));
  compressed.resize(compressed.size() - 8);
  expect_image_file_error(compressed, {"truncated gzip stream"}, 200);
}

TEST_F(DataReaders, IdxCorruptGzipChecksum) {
  const IdxSample sample;
  write_gzip(path("good.gz"), sample.image_file());
  Bytes compressed = read_plain(path("good.gz"));
  compressed[compressed.size() - 8] ^= 0xFF;  // first CRC-32 byte of the trailer
  expect_image_file_error(compressed, {"corrupt gzip data", "incorrect data check"});
}

TEST_F(DataReaders, IdxTrailingBytes) {
  Bytes file = IdxSample().image_file();
  file.push_back(42);
  expect_image_file_error(file, {"trailing bytes"});
}

TEST_F(DataReaders, IdxCountMismatchNamesBothFiles) {
  const std::string images = path("images");
  const std::string labels = path("labels");
  write_plain(images, IdxSample().image_file());
  write_plain(labels, idx_bytes(0x00000801, {4}, {1, 2, 3, 4}));
  expect_io_error([&] { ddtrain::data::read_idx_dataset(images, labels); },
                  {images, labels, "image count 5", "label count 4"});
}

TEST_F(DataReaders, IdxLabelOutOfRange) {
  expect_label_file_error(idx_bytes(0x00000801, {5}, {1, 2, 10, 3, 4}), {"label 10", "index 2"});
  expect_label_file_error(idx_bytes(0x00000801, {5}, {1, 2, 3, 4, 255}), {"label 255", "index 4"});
}

// ---- CIFAR-10 -----------------------------------------------------------------------------

void expect_cifar(const ImageDataset& data, const std::vector<CifarBatch>& batches) {
  EXPECT_EQ(data.channels, 3);
  EXPECT_EQ(data.height, 32);
  EXPECT_EQ(data.width, 32);
  EXPECT_EQ(data.num_classes, 10);
  Bytes pixels;
  std::vector<int64_t> labels;
  for (const CifarBatch& batch : batches) {
    for (size_t r = 0; r < batch.labels.size(); ++r) {
      labels.push_back(batch.labels[r]);
      pixels.insert(pixels.end(), batch.images[r].begin(), batch.images[r].end());
    }
  }
  EXPECT_EQ(data.count, static_cast<int64_t>(labels.size()));
  EXPECT_EQ(data.labels, labels);
  EXPECT_EQ(data.pixels, pixels);  // the record's channel-major bytes are NCHW as they are
}

TEST_F(DataReaders, CifarBatchesConcatenate) {
  const std::vector<CifarBatch> batches = {cifar_batch({0, 9, 4}, 10), cifar_batch({7, 7}, 20)};
  write_plain(path("a.bin"), batches[0].file());
  write_plain(path("b.bin"), batches[1].file());
  expect_cifar(ddtrain::data::read_cifar_batches({path("a.bin"), path("b.bin")}), batches);
}

TEST_F(DataReaders, CifarLoadSplitDirectAndSubfolder) {
  std::vector<CifarBatch> train;
  for (unsigned i = 1; i <= 5; ++i) {
    train.push_back(cifar_batch({static_cast<uint8_t>(i), static_cast<uint8_t>(9 - i)}, 100 * i));
    write_plain(path("data_batch_" + std::to_string(i) + ".bin"), train.back().file());
  }
  expect_cifar(ddtrain::data::load_cifar10_split(dir_.string(), true), train);

  const std::vector<CifarBatch> test = {cifar_batch({5, 6, 7, 8}, 7)};
  fs::create_directories(dir_ / "cifar-10-batches-bin");
  write_plain(dir_ / "cifar-10-batches-bin" / "test_batch.bin", test[0].file());
  expect_cifar(ddtrain::data::load_cifar10_split(dir_.string(), false), test);
}

TEST_F(DataReaders, CifarMissingFiles) {
  expect_io_error([&] { ddtrain::data::read_cifar_batches({path("gone.bin")}); },
                  {path("gone.bin"), "not found"});
  expect_io_error([&] { ddtrain::data::load_cifar10_split(dir_.string(), false); },
                  {"test_batch.bin", dir_.string(), "cifar-10-batches-bin"});
  // A partial download: the message names exactly the missing batches.
  for (int i : {1, 2, 4})
    write_plain(path("data_batch_" + std::to_string(i) + ".bin"), cifar_batch({1}, 1).file());
  expect_io_error([&] { ddtrain::data::load_cifar10_split(dir_.string(), true); },
                  {"missing: " + path("data_batch_3.bin") + ", " + path("data_batch_5.bin")});
}

TEST_F(DataReaders, CifarShortRecord) {
  Bytes file = cifar_batch({1, 2}, 3).file();
  file.resize(file.size() - 100);  // 2*3073 - 100 = 6046 bytes: one full record + 2973
  write_plain(path("short.bin"), file);
  expect_io_error([&] { ddtrain::data::read_cifar_batches({path("short.bin")}); },
                  {path("short.bin"), "6046 bytes", "not a multiple of the 3073", "2973 bytes"});
  write_plain(path("empty.bin"), {});
  expect_io_error([&] { ddtrain::data::read_cifar_batches({path("empty.bin")}); },
                  {path("empty.bin"), "empty"});
}

TEST_F(DataReaders, CifarLabelOutOfRange) {
  write_plain(path("good.bin"), cifar_batch({1}, 1).file());
  write_plain(path("bad.bin"), cifar_batch({3, 4, 10}, 1).file());
  expect_io_error(
      [&] {
        ddtrain::data::read_cifar_batches({path("good.bin"), path("bad.bin")});
      },
      {path("bad.bin"), "label 10", "record 2"});
}

// ---- the real Fashion-MNIST of the Debian package dataset-fashion-mnist -------------------

TEST(DataReadersReal, FashionMnistFromDebianPackage) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::is_directory(dir)) {
    GTEST_SKIP() << dir << " is absent (install the Debian package dataset-fashion-mnist)";
  }
  const ImageDataset train = ddtrain::data::load_mnist_split(dir, true);
  const ImageDataset test = ddtrain::data::load_mnist_split(dir, false);
  for (const ImageDataset* data : {&train, &test}) {
    EXPECT_EQ(data->channels, 1);
    EXPECT_EQ(data->height, 28);
    EXPECT_EQ(data->width, 28);
    EXPECT_EQ(data->pixels.size(), static_cast<size_t>(data->count) * 28 * 28);
    EXPECT_EQ(data->labels.size(), static_cast<size_t>(data->count));
  }
  EXPECT_EQ(train.count, 60000);
  EXPECT_EQ(test.count, 10000);
  // Fashion-MNIST is exactly balanced: 6000 / 1000 images per class.
  std::array<int, 10> train_per_class{}, test_per_class{};
  for (int64_t label : train.labels) ++train_per_class.at(static_cast<size_t>(label));
  for (int64_t label : test.labels) ++test_per_class.at(static_cast<size_t>(label));
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(train_per_class[c], 6000) << "class " << c;
    EXPECT_EQ(test_per_class[c], 1000) << "class " << c;
  }
}

}  // namespace
