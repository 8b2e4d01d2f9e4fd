#pragma once
// MATLAB .mat files holding a reference solution in the layout of the published AC.mat:
//   x  : n x 1 double (grid points; 1 x n is accepted on reading)
//   tt : 1 x m double (times; m x 1 is accepted on reading)
//   uu : n x m double, uu(i, j) = u(x_i, t_j)
// Read and written through libmatio, so files from MATLAB, SciPy and matio all work.
#include <string>

#include "ddtrain/reference/allen_cahn_reference.hpp"

namespace ddtrain::reference {

/// Writes `field` to `path` as a MATLAB v5 file with variables x, tt, uu. The data goes to
/// `path + ".tmp"` first and is renamed onto `path` only once complete, so `path` never holds a
/// half-written file. Throws ddtrain::InvalidArgument when the field's sizes do not fit together
/// and ddtrain::IoError when the file cannot be written.
void write_reference_mat(const std::string& path, const ReferenceField& field);

/// Reads x, tt, uu from a .mat file (any version libmatio reads: v4, v5, v7.3). Throws
/// ddtrain::IoError with one line naming the file, what is wrong and what is expected when the
/// file is missing, not a .mat file, truncated or corrupt, lacks a variable, holds a variable
/// of the wrong shape, class (not double) or complexity, or holds NaN or Inf values.
ReferenceField read_reference_mat(const std::string& path);

}  // namespace ddtrain::reference
