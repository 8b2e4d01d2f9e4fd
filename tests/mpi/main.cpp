// main() of the MPI test binary: initialises MPI, prints gtest output on rank 0 only, and makes
// every rank exit with the same status (a failure on any rank fails the test everywhere).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "ddtrain/comm/mpi_comm.hpp"

int main(int argc, char** argv) {
  ddtrain::ensure_mpi_initialized();
  torch::set_num_threads(1);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any_failed && !failed) std::printf("[  FAILED  ] on another rank\n");
  return any_failed;
}
