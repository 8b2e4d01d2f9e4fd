#include "ddtrain/reference/mat_file.hpp"

#include <matio.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "ddtrain/error.hpp"

namespace ddtrain::reference {
namespace {

namespace fs = std::filesystem;

constexpr const char* kExpectedLayout =
    "expected a MATLAB .mat file with real double variables x (n x 1), tt (1 x m), uu (n x m)";

/// Closes the file on every path out of a function. The destructor ignores Mat_Close's status
/// because it only runs when an error is already being reported (or after close() succeeded).
class MatFile {
 public:
  explicit MatFile(mat_t* handle) : handle_(handle) {}
  MatFile(const MatFile&) = delete;
  MatFile& operator=(const MatFile&) = delete;
  ~MatFile() {
    if (handle_ != nullptr) Mat_Close(handle_);
  }
  mat_t* get() const { return handle_; }
  mat_t* release() {
    mat_t* handle = handle_;
    handle_ = nullptr;
    return handle;
  }
  /// Closes explicitly so the caller can check the status (a failed flush loses data).
  int close() {
    const int status = Mat_Close(handle_);
    handle_ = nullptr;
    return status;
  }

 private:
  mat_t* handle_;
};

/// Owns a matvar_t; Mat_VarFree returns nothing to check.
class MatVariable {
 public:
  explicit MatVariable(matvar_t* variable) : variable_(variable) {}
  MatVariable(const MatVariable&) = delete;
  MatVariable& operator=(const MatVariable&) = delete;
  ~MatVariable() { Mat_VarFree(variable_); }
  matvar_t* get() const { return variable_; }
  const matvar_t& operator*() const { return *variable_; }

 private:
  matvar_t* variable_;
};

// ---------------------------------------------------------------------------------------------
// Writing

void check_field_sizes(const ReferenceField& field) {
  DDTRAIN_CHECK(!field.x.empty() && !field.t.empty(), InvalidArgument,
                "write_reference_mat: the field has no grid points (nx = ", field.x.size(),
                ", nt = ", field.t.size(), ")");
  DDTRAIN_CHECK(field.u.size() == field.x.size() * field.t.size(), InvalidArgument,
                "write_reference_mat: u has ", field.u.size(),
                " values, expected nx * nt = ", field.x.size(), " * ", field.t.size());
}

void remove_quietly(const std::string& path) {
  std::error_code ignored;
  fs::remove(path, ignored);
}

/// Writes one real double matrix stored column-major. matio does not modify the data with
/// MAT_F_DONT_COPY_DATA, but its API takes a non-const pointer.
void write_matrix(mat_t* mat, const std::string& tmp_path, const char* name,
                  const std::vector<double>& data, std::size_t rows, std::size_t cols) {
  std::size_t dims[2] = {rows, cols};
  MatVariable variable(Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims,
                                     const_cast<double*>(data.data()), MAT_F_DONT_COPY_DATA));
  DDTRAIN_CHECK(variable.get() != nullptr, IoError, "cannot write reference file '", tmp_path,
                "': libmatio could not create variable '", name, "'");
  const int status = Mat_VarWrite(mat, variable.get(), MAT_COMPRESSION_NONE);
  DDTRAIN_CHECK(status == 0, IoError, "cannot write reference file '", tmp_path,
                "': libmatio failed writing variable '", name, "' (error ", status,
                "; disk full or not writable?)");
}

void write_all_variables(mat_t* mat, const std::string& tmp_path, const ReferenceField& field) {
  write_matrix(mat, tmp_path, "x", field.x, field.x.size(), 1);
  write_matrix(mat, tmp_path, "tt", field.t, 1, field.t.size());
  write_matrix(mat, tmp_path, "uu", field.u, field.x.size(), field.t.size());
}

void write_temporary_file(const std::string& tmp_path, const ReferenceField& field) {
  MatFile file(
      Mat_CreateVer(tmp_path.c_str(), "ddtrain reference solution (x, tt, uu)", MAT_FT_MAT5));
  DDTRAIN_CHECK(file.get() != nullptr, IoError, "cannot create reference file '", tmp_path,
                "' (directory missing or not writable?)");
  write_all_variables(file.get(), tmp_path, field);
  const int status = file.close();
  DDTRAIN_CHECK(status == 0, IoError, "cannot write reference file '", tmp_path,
                "': closing it failed (error ", status, "; disk full?)");
}

// ---------------------------------------------------------------------------------------------
// Reading

/// All read errors share this shape: file, what is wrong, what is expected.
[[noreturn]] void fail_reading(const std::string& path, const std::string& problem) {
  throw IoError("reference file '" + path + "': " + problem + "; " + kExpectedLayout);
}

/// Refuses a variable with NaN or Inf values: one line with their count and the first one.
void check_finite(const std::string& path, const char* name, const std::vector<double>& values) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    if (bad++ == 0) first = i;
  }
  if (bad == 0) return;
  throw IoError("reference file '" + path + "': variable '" + name + "' holds " + std::to_string(bad) +
                " non-finite value" + (bad == 1 ? "" : "s") + " (NaN or Inf; the first at index " +
                std::to_string(first) + " of " + std::to_string(values.size()) +
                "); a reference solution must be finite everywhere");
}

const char* class_name(matio_classes class_type) {
  switch (class_type) {
    case MAT_C_EMPTY: return "empty";
    case MAT_C_CELL: return "cell";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_OBJECT: return "object";
    case MAT_C_CHAR: return "char";
    case MAT_C_SPARSE: return "sparse";
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_FUNCTION: return "function handle";
    case MAT_C_OPAQUE: return "opaque";
  }
  return "unknown";
}

std::string shape_string(const matvar_t& variable) {
  std::string shape;
  for (int d = 0; d < variable.rank; ++d) {
    if (d > 0) shape += " x ";
    shape += std::to_string(variable.dims[d]);
  }
  return shape.empty() ? "no dimensions" : shape;
}

void require_regular_file(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) fail_reading(path, "file does not exist");
  if (!fs::is_regular_file(status)) fail_reading(path, "not a regular file");
}

/// Names of all variables in the file ("" when none), for error messages. Mat_GetDir keeps
/// ownership of the array (it is freed by Mat_Close) and returns nothing for an unreadable
/// directory.
std::string variable_names(mat_t* mat) {
  std::size_t count = 0;
  char** names = Mat_GetDir(mat, &count);
  std::string list;
  for (std::size_t k = 0; names != nullptr && k < count; ++k) {
    if (names[k] == nullptr) continue;
    if (!list.empty()) list += ", ";
    list += names[k];
  }
  return list;
}

/// A real double matrix read from the file, column-major like MATLAB.
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> values;
};

/// Class, complexity and rank are checked on the header alone, before any data is read, so a
/// wrong variable is reported as such instead of being loaded.
void check_real_double_matrix(const matvar_t& variable, const std::string& path, const char* name) {
  if (variable.class_type != MAT_C_DOUBLE) {
    fail_reading(path, std::string("variable '") + name + "' has class " +
                           class_name(variable.class_type) + ", not double");
  }
  if (variable.isComplex != 0)
    fail_reading(path, std::string("variable '") + name + "' is complex, not real");
  if (variable.rank != 2 || variable.dims == nullptr) {
    fail_reading(path, std::string("variable '") + name + "' has shape " + shape_string(variable) +
                           ", not a 2-D matrix");
  }
}

/// Reads a variable's data after its header passed check_real_double_matrix. Mat_VarRead
/// returns null (or no data) when the data block is cut off or does not inflate.
Matrix read_matrix_data(mat_t* mat, const std::string& path, const char* name) {
  MatVariable variable(Mat_VarRead(mat, name));
  const std::string unreadable =
      std::string("variable '") + name + "' could not be read (file truncated or corrupt)";
  if (variable.get() == nullptr) fail_reading(path, unreadable);
  check_real_double_matrix(*variable, path, name);
  Matrix matrix;
  matrix.rows = variable.get()->dims[0];
  matrix.cols = variable.get()->dims[1];
  const std::size_t count = matrix.rows * matrix.cols;
  // matio converts stored integer types to the class type (double) while reading; anything else
  // here means the data block did not match its header.
  const bool complete = variable.get()->data_type == MAT_T_DOUBLE &&
                        (count == 0 || variable.get()->data != nullptr) &&
                        variable.get()->nbytes >= count * sizeof(double);
  if (!complete) fail_reading(path, unreadable);
  const double* data = static_cast<const double*>(variable.get()->data);
  matrix.values.assign(data, data + count);
  return matrix;
}

/// Reads one real double matrix. "Not there" and "there but unreadable" are told apart because
/// they need different fixes (wrong file vs. damaged file).
Matrix read_matrix(mat_t* mat, const std::string& path, const char* name) {
  {
    MatVariable info(Mat_VarReadInfo(mat, name));
    if (info.get() == nullptr) {
      const std::string names = variable_names(mat);
      // A MAT file without any readable variable is almost always damaged (e.g. a truncated
      // v7.3/HDF5 file, which libmatio still "opens"), not merely the wrong file.
      fail_reading(path, std::string("no variable '") + name + "' (" +
                             (names.empty() ? std::string("no readable variables at all: file "
                                                          "truncated or corrupt?")
                                            : "variables found: " + names) +
                             ")");
    }
    check_real_double_matrix(*info, path, name);
  }
  return read_matrix_data(mat, path, name);
}

/// x and tt are vectors; MATLAB users store them either as a row or as a column.
std::vector<double> as_vector(Matrix matrix, const std::string& path, const char* name,
                              const char* expected) {
  if (matrix.rows != 1 && matrix.cols != 1) {
    fail_reading(path, std::string("variable '") + name + "' has shape " +
                           std::to_string(matrix.rows) + " x " + std::to_string(matrix.cols) +
                           ", expected " + expected);
  }
  if (matrix.values.empty()) fail_reading(path, std::string("variable '") + name + "' is empty");
  return std::move(matrix.values);
}

// MAT v5 layout (MathWorks "MAT-File Format", ch. 1): a 128-byte header whose last two bytes
// are the endian indicator, then top-level data elements, each an 8-byte tag (uint32 type,
// uint32 byte count) followed by that many bytes, padded to 8 bytes unless compressed.
// libmatio reads a data block that the file cuts short without reporting it (the missing values
// are left as garbage), so the element sizes are checked against the file size here first.
constexpr std::uint64_t kV5HeaderBytes = 128;
constexpr std::uint32_t kV5Compressed = 15;  // miCOMPRESSED: zlib stream, not padded

std::uint32_t decode_uint32(const unsigned char* bytes, bool little_endian) {
  std::uint32_t value = 0;
  for (int b = 0; b < 4; ++b) {
    const int shift = little_endian ? 8 * b : 8 * (3 - b);
    value |= static_cast<std::uint32_t>(bytes[b]) << shift;
  }
  return value;
}

/// Returns "" when every top-level element of a v5 file lies inside the file, otherwise what
/// is cut off.
std::string v5_truncation(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[kV5HeaderBytes];
  if (!in.read(reinterpret_cast<char*>(header), kV5HeaderBytes))
    return "file truncated inside the 128-byte MAT header";
  // 'I' 'M' when the writer was little-endian (it wrote the 16-bit value 'MI' natively).
  const bool little_endian = header[126] == 'I' && header[127] == 'M';
  std::error_code error;
  const std::uint64_t size = fs::file_size(path, error);
  if (error) return "cannot determine the file size: " + error.message();
  std::uint64_t offset = kV5HeaderBytes;
  while (offset < size) {
    unsigned char tag[8];
    in.seekg(static_cast<std::streamoff>(offset));
    if (size - offset < 8 || !in.read(reinterpret_cast<char*>(tag), 8))
      return "file truncated: data element tag at byte " + std::to_string(offset) + " is cut off";
    const std::uint32_t type = decode_uint32(tag, little_endian);
    // Small data element: type in the low 16 bits, at most 4 bytes of data inside the tag.
    const bool small = (type >> 16) != 0;
    const std::uint64_t bytes = small ? 0 : decode_uint32(tag + 4, little_endian);
    if (bytes > size - offset - 8) {
      return "file truncated: data element at byte " + std::to_string(offset) + " needs " +
             std::to_string(bytes) + " bytes but the file ends at byte " + std::to_string(size);
    }
    const std::uint64_t padded = (small || type == kV5Compressed) ? bytes : (bytes + 7) / 8 * 8;
    offset += 8 + padded;
  }
  return "";
}

mat_t* open_for_reading(const std::string& path) {
  require_regular_file(path);
  std::error_code error;
  // matio opens an empty file as an empty v4 file; reject it as what it is.
  if (fs::file_size(path, error) == 0 && !error) fail_reading(path, "file is empty");
  MatFile file(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (file.get() == nullptr) fail_reading(path, "not a MATLAB .mat file (or unreadable)");
  if (Mat_GetVersion(file.get()) == MAT_FT_MAT5) {
    const std::string truncation = v5_truncation(path);
    if (!truncation.empty()) fail_reading(path, truncation);
  }
  return file.release();
}

}  // namespace

void write_reference_mat(const std::string& path, const ReferenceField& field) {
  check_field_sizes(field);
  const std::string tmp_path = path + ".tmp";
  try {
    write_temporary_file(tmp_path, field);
  } catch (...) {
    remove_quietly(tmp_path);  // never leave a partial file behind
    throw;
  }
  std::error_code error;
  fs::rename(tmp_path, path, error);
  if (error) {
    remove_quietly(tmp_path);
    throw IoError("cannot write reference file '" + path + "': renaming '" + tmp_path +
                  "' onto it failed: " + error.message());
  }
}

ReferenceField read_reference_mat(const std::string& path) {
  MatFile file(open_for_reading(path));
  ReferenceField field;
  field.x = as_vector(read_matrix(file.get(), path, "x"), path, "x", "n x 1 or 1 x n");
  field.t = as_vector(read_matrix(file.get(), path, "tt"), path, "tt", "1 x m or m x 1");
  Matrix uu = read_matrix(file.get(), path, "uu");
  if (uu.rows != field.x.size() || uu.cols != field.t.size()) {
    fail_reading(path, "variable 'uu' has shape " + std::to_string(uu.rows) + " x " +
                           std::to_string(uu.cols) + ", expected numel(x) x numel(tt) = " +
                           std::to_string(field.x.size()) + " x " + std::to_string(field.t.size()));
  }
  field.u = std::move(uu.values);
  const int status = file.close();
  if (status != 0)
    fail_reading(path, "closing the file failed (error " + std::to_string(status) + ")");
  // A NaN or Inf would only show at the first metric evaluation, after the run has started.
  check_finite(path, "x", field.x);
  check_finite(path, "tt", field.t);
  check_finite(path, "uu", field.u);
  return field;
}

}  // namespace ddtrain::reference
