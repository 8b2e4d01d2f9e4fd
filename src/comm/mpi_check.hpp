#pragma once
// MPI return codes -> ddtrain::CommError. Torch-free: shared by MpiComm (libddtrain) and the
// NCCL core (its own torch-free library).
#include <mpi.h>

#include <string>

#include "ddtrain/error.hpp"

namespace ddtrain::detail {

inline void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw CommError(std::string(call) + " failed: " + std::string(text, length));
}

}  // namespace ddtrain::detail
