// Tests of the .mat reference file reader/writer: round trips, the layouts MATLAB users produce,
// and one clear IoError (naming the file) for every kind of bad file. The bad files are written
// here, through libmatio directly or by damaging a good file.
#include <gtest/gtest.h>
#include <matio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ddtrain/error.hpp"
#include "ddtrain/reference/mat_file.hpp"
#include "remove_tree.hpp"

namespace ddtrain::reference {
namespace {

namespace fs = std::filesystem;

/// A small field with distinct values everywhere, so any transposition or offset shows.
ReferenceField small_field(int nx = 6, int nt = 4) {
  ReferenceField field;
  for (int i = 0; i < nx; ++i) field.x.push_back(-1.0 + 2.0 * i / nx);
  for (int j = 0; j < nt; ++j) field.t.push_back(0.25 * j);
  for (int j = 0; j < nt; ++j)
    for (int i = 0; i < nx; ++i) field.u.push_back(0.001 * i - 0.1 * j + 1.0 / (3.0 + i + 7 * j));
  return field;
}

/// One variable as the test writes it with matio directly.
struct Variable {
  std::string name;
  matio_classes class_type = MAT_C_DOUBLE;
  std::vector<std::size_t> dims;
  std::vector<double> values;  // real part; converted for other classes
  bool complex = false;
};

Variable double_variable(const std::string& name, std::size_t rows, std::size_t cols,
                         const std::vector<double>& values) {
  return Variable{name, MAT_C_DOUBLE, {rows, cols}, values, false};
}

void write_raw_variable(mat_t* mat, const Variable& v, matio_compression compression) {
  std::vector<float> singles(v.values.begin(), v.values.end());
  std::vector<double> zeros(v.values.size(), 0.0);
  std::vector<std::size_t> dims = v.dims;
  mat_complex_split_t split{const_cast<double*>(v.values.data()), zeros.data()};
  void* data = const_cast<double*>(v.values.data());
  matio_types type = MAT_T_DOUBLE;
  if (v.class_type == MAT_C_SINGLE) {
    data = singles.data();
    type = MAT_T_SINGLE;
  }
  if (v.complex) data = &split;
  matvar_t* variable =
      Mat_VarCreate(v.name.c_str(), v.class_type, type, static_cast<int>(dims.size()), dims.data(),
                    data, MAT_F_DONT_COPY_DATA | (v.complex ? MAT_F_COMPLEX : 0));
  ASSERT_NE(variable, nullptr) << v.name;
  EXPECT_EQ(Mat_VarWrite(mat, variable, compression), 0) << v.name;
  Mat_VarFree(variable);
}

void write_raw_mat(const fs::path& path, const std::vector<Variable>& variables,
                   mat_ft version = MAT_FT_MAT5,
                   matio_compression compression = MAT_COMPRESSION_NONE) {
  mat_t* mat = Mat_CreateVer(path.string().c_str(), nullptr, version);
  ASSERT_NE(mat, nullptr) << path;
  for (const Variable& v : variables) write_raw_variable(mat, v, compression);
  ASSERT_EQ(Mat_Close(mat), 0);
}

/// x, tt, uu of `field` in the canonical layout, for tests that spoil one of them.
std::vector<Variable> canonical_variables(const ReferenceField& field) {
  const std::size_t n = field.x.size(), m = field.t.size();
  return {double_variable("x", n, 1, field.x), double_variable("tt", 1, m, field.t),
          double_variable("uu", n, m, field.u)};
}

void expect_equal_fields(const ReferenceField& a, const ReferenceField& b) {
  EXPECT_EQ(a.x, b.x);  // bitwise: doubles are stored as they are
  EXPECT_EQ(a.t, b.t);
  EXPECT_EQ(a.u, b.u);
}

class MatFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Unique per test and run, so tests may run in parallel processes (ctest -j).
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    dir_ = fs::temp_directory_path() /
           ("ddtrain_test_mat_file_" + std::string(info->name()) + "_" + std::to_string(stamp));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    remove_tree(dir_);
  }
  fs::path file(const std::string& name) const { return dir_ / name; }

  /// Reading `path` must throw IoError whose message names the file and contains `detail`.
  static void expect_read_error(const fs::path& path, const std::string& detail) {
    try {
      read_reference_mat(path.string());
      ADD_FAILURE() << "no IoError for " << path;
    } catch (const IoError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(path.filename().string()), std::string::npos) << message;
      EXPECT_NE(message.find(detail), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    }
  }

  fs::path dir_;
};

TEST_F(MatFileTest, RoundTripIsExact) {
  const ReferenceField field = small_field();
  const fs::path path = file("ref.mat");
  write_reference_mat(path.string(), field);
  expect_equal_fields(read_reference_mat(path.string()), field);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST_F(MatFileTest, WriterStoresPublishedLayout) {
  const ReferenceField field = small_field(6, 4);
  const fs::path path = file("layout.mat");
  write_reference_mat(path.string(), field);
  mat_t* mat = Mat_Open(path.string().c_str(), MAT_ACC_RDONLY);
  ASSERT_NE(mat, nullptr);
  EXPECT_EQ(Mat_GetVersion(mat), MAT_FT_MAT5);
  const std::vector<std::pair<const char*, std::pair<std::size_t, std::size_t>>> expected = {
      {"x", {6, 1}}, {"tt", {1, 4}}, {"uu", {6, 4}}};
  for (const auto& [name, shape] : expected) {
    matvar_t* variable = Mat_VarReadInfo(mat, name);
    ASSERT_NE(variable, nullptr) << name;
    EXPECT_EQ(variable->class_type, MAT_C_DOUBLE) << name;
    EXPECT_EQ(variable->rank, 2) << name;
    EXPECT_EQ(variable->dims[0], shape.first) << name;
    EXPECT_EQ(variable->dims[1], shape.second) << name;
    Mat_VarFree(variable);
  }
  EXPECT_EQ(Mat_Close(mat), 0);
}

TEST_F(MatFileTest, OverwritesExistingFile) {
  const fs::path path = file("ref.mat");
  write_reference_mat(path.string(), small_field(8, 3));
  const ReferenceField second = small_field(4, 5);
  write_reference_mat(path.string(), second);
  expect_equal_fields(read_reference_mat(path.string()), second);
}

TEST_F(MatFileTest, AcceptsRowXAndColumnTt) {
  const ReferenceField field = small_field();
  const fs::path path = file("row_x.mat");
  write_raw_mat(path, {double_variable("x", 1, field.x.size(), field.x),
                       double_variable("tt", field.t.size(), 1, field.t),
                       double_variable("uu", field.x.size(), field.t.size(), field.u)});
  expect_equal_fields(read_reference_mat(path.string()), field);
}

TEST_F(MatFileTest, ReadsCompressedFileLikeMatlabSaves) {
  const ReferenceField field = small_field();
  const fs::path path = file("compressed.mat");
  write_raw_mat(path, canonical_variables(field), MAT_FT_MAT5, MAT_COMPRESSION_ZLIB);
  expect_equal_fields(read_reference_mat(path.string()), field);
}

// MATLAB's -v7.3 files are HDF5; they work when libmatio was built with HDF5 (Debian's is).
TEST_F(MatFileTest, ReadsV73File) {
  const fs::path path = file("v73.mat");
  mat_t* probe = Mat_CreateVer(path.string().c_str(), nullptr, MAT_FT_MAT73);
  if (probe == nullptr) GTEST_SKIP() << "libmatio built without HDF5 (MAT v7.3) support";
  ASSERT_EQ(Mat_Close(probe), 0);
  const ReferenceField field = small_field();
  write_raw_mat(path, canonical_variables(field), MAT_FT_MAT73);
  expect_equal_fields(read_reference_mat(path.string()), field);
}

TEST_F(MatFileTest, IgnoresExtraVariables) {
  const ReferenceField field = small_field();
  std::vector<Variable> variables = canonical_variables(field);
  variables.insert(variables.begin(), double_variable("usol", 2, 2, {1, 2, 3, 4}));
  const fs::path path = file("extra.mat");
  write_raw_mat(path, variables);
  expect_equal_fields(read_reference_mat(path.string()), field);
}

TEST_F(MatFileTest, WriteRejectsInconsistentField) {
  ReferenceField field = small_field();
  field.u.pop_back();
  EXPECT_THROW(write_reference_mat(file("bad.mat").string(), field), InvalidArgument);
  EXPECT_FALSE(fs::exists(file("bad.mat")));
}

TEST_F(MatFileTest, WriteIntoMissingDirectoryFailsWithoutLeavingFiles) {
  const fs::path path = file("no_such_dir") / "ref.mat";
  try {
    write_reference_mat(path.string(), small_field());
    ADD_FAILURE() << "no IoError";
  } catch (const IoError& error) {
    EXPECT_NE(std::string(error.what()).find("ref.mat"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST_F(MatFileTest, MissingFile) { expect_read_error(file("absent.mat"), "does not exist"); }

TEST_F(MatFileTest, DirectoryInsteadOfFile) {
  fs::create_directory(file("folder.mat"));
  expect_read_error(file("folder.mat"), "not a regular file");
}

TEST_F(MatFileTest, TextFileRenamedMat) {
  const fs::path path = file("notes.mat");
  std::ofstream(path) << "x,tt,uu\n0.1,0.2,0.3\nthis is a CSV file, not a MAT file\n";
  expect_read_error(path, "not a MATLAB .mat file");
}

TEST_F(MatFileTest, EmptyFile) {
  const fs::path path = file("empty.mat");
  std::ofstream{path};
  expect_read_error(path, "file is empty");
}

TEST_F(MatFileTest, MissingUu) {
  const ReferenceField field = small_field();
  const fs::path path = file("no_uu.mat");
  std::vector<Variable> variables = canonical_variables(field);
  variables.pop_back();
  write_raw_mat(path, variables);
  expect_read_error(path, "no variable 'uu' (variables found: x, tt)");
}

TEST_F(MatFileTest, MissingX) {
  const ReferenceField field = small_field();
  const fs::path path = file("no_x.mat");
  std::vector<Variable> variables = canonical_variables(field);
  variables.erase(variables.begin());
  write_raw_mat(path, variables);
  expect_read_error(path, "no variable 'x'");
}

TEST_F(MatFileTest, UuWithWrongShape) {
  const ReferenceField field = small_field(6, 4);
  const fs::path path = file("wrong_shape.mat");
  std::vector<Variable> variables = canonical_variables(field);
  variables[2] = double_variable("uu", 4, 6, field.u);  // transposed
  write_raw_mat(path, variables);
  expect_read_error(path, "'uu' has shape 4 x 6, expected numel(x) x numel(tt) = 6 x 4");
}

TEST_F(MatFileTest, XAsMatrix) {
  const ReferenceField field = small_field(6, 4);
  const fs::path path = file("x_matrix.mat");
  std::vector<Variable> variables = canonical_variables(field);
  variables[0] = double_variable("x", 2, 3, field.x);
  write_raw_mat(path, variables);
  expect_read_error(path, "'x' has shape 2 x 3, expected n x 1 or 1 x n");
}

TEST_F(MatFileTest, ThreeDimensionalUu) {
  const ReferenceField field = small_field(6, 4);
  const fs::path path = file("uu_3d.mat");
  std::vector<Variable> variables = canonical_variables(field);
  variables[2].dims = {6, 2, 2};
  write_raw_mat(path, variables);
  expect_read_error(path, "'uu' has shape 6 x 2 x 2, not a 2-D matrix");
}

TEST_F(MatFileTest, SinglePrecisionUu) {
  const ReferenceField field = small_field();
  const fs::path path = file("single.mat");
  std::vector<Variable> variables = canonical_variables(field);
  variables[2].class_type = MAT_C_SINGLE;
  write_raw_mat(path, variables);
  expect_read_error(path, "'uu' has class single, not double");
}

TEST_F(MatFileTest, ComplexUu) {
  const ReferenceField field = small_field();
  const fs::path path = file("complex.mat");
  std::vector<Variable> variables = canonical_variables(field);
  variables[2].complex = true;
  write_raw_mat(path, variables);
  expect_read_error(path, "'uu' is complex, not real");
}

/// Truncation anywhere (inside the 128-byte header, inside a variable's tag, inside the data)
/// must give an IoError, never a crash or a silently short field.
void expect_truncations_rejected(const fs::path& good, const fs::path& damaged) {
  const auto size = fs::file_size(good);
  for (const std::uintmax_t keep :
       {std::uintmax_t{0}, std::uintmax_t{10}, std::uintmax_t{127}, std::uintmax_t{128},
        std::uintmax_t{130}, std::uintmax_t{200}, size / 2, size - 100, size - 8, size - 1}) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(size) + " bytes");
    fs::copy_file(good, damaged, fs::copy_options::overwrite_existing);
    fs::resize_file(damaged, keep);
    try {
      read_reference_mat(damaged.string());
      ADD_FAILURE() << "no IoError";
    } catch (const IoError& error) {
      EXPECT_NE(std::string(error.what()).find(damaged.filename().string()), std::string::npos)
          << error.what();
    }
  }
}

TEST_F(MatFileTest, TruncatedFile) {
  const fs::path good = file("good.mat");
  write_reference_mat(good.string(), small_field(64, 21));
  expect_truncations_rejected(good, file("truncated.mat"));
}

TEST_F(MatFileTest, TruncatedCompressedFile) {
  const fs::path good = file("good_compressed.mat");
  write_raw_mat(good, canonical_variables(small_field(64, 21)), MAT_FT_MAT5, MAT_COMPRESSION_ZLIB);
  expect_truncations_rejected(good, file("truncated_compressed.mat"));
}

}  // namespace
}  // namespace ddtrain::reference
