#pragma once
/// @file
/// MpiComm: collectives over an MPI communicator (Open MPI). CPU tensors are reduced in place;
/// CUDA tensors are staged through host memory unless the MPI library is CUDA-aware.
#include <mpi.h>

#include "ddtrain/comm/communicator.hpp"

namespace ddtrain {

/// Initialises MPI (thread level FUNNELED) if nobody has yet, and finalises it at exit only if
/// it initialised it. Safe to call many times.
void ensure_mpi_initialized();

class MpiComm final : public Communicator {
 public:
  /// Wraps MPI_COMM_WORLD (initialising MPI if needed).
  MpiComm();
  /// Wraps a communicator the caller already has; `take_ownership` frees it on destruction.
  explicit MpiComm(MPI_Comm comm, bool take_ownership = false);
  ~MpiComm() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void allreduce_sum(torch::Tensor& tensor) override;
  using Communicator::allreduce_sum;
  /// MPI_Iallreduce on CPU tensors (CUDA tensors: the blocking, host-staged allreduce).
  PendingCollectivePtr start_allreduce_sum(torch::Tensor& tensor) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override;
  std::shared_ptr<Communicator> split(int color, int key) override;
  void abort(int exit_code) override;

  MPI_Comm handle() const { return comm_; }

 private:
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace ddtrain
