#pragma once
/// @file
/// NcclComm: the Communicator for CUDA tensors. Tensor collectives run over NCCL (NcclCore) on
/// the current c10 CUDA stream; the bootstrap MpiComm shares the NCCL id and carries barriers,
/// host scalars, split and abort. Compiled only against a CUDA LibTorch (DDTRAIN_HAVE_NCCL_COMM).
#include <memory>
#include <string>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/comm/mpi_comm.hpp"
#include "ddtrain/comm/nccl_core.hpp"

namespace ddtrain {

struct NcclCommOptions {
  /// Device (default -1: local rank % visible GPUs) and synchronize timeout (default 1800 s).
  nccl::NcclCoreOptions core;
  /// Default true: each collective waits for completion while polling NCCL's async errors, so
  /// a failed peer raises CommError at the collective. false: collectives stay asynchronous on
  /// the stream (no host wait), but a dead peer then hangs the next host synchronisation.
  bool wait_for_collectives = true;

  std::string validate() const { return core.validate(); }
};

class NcclComm final : public Communicator {
 public:
  /// Collective over `bootstrap`'s ranks: every rank joins one NCCL communicator.
  explicit NcclComm(std::shared_ptr<MpiComm> bootstrap, const NcclCommOptions& options = {});
  ~NcclComm() override;

  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  std::string backend() const override { return "nccl"; }
  /// In-place sum of a contiguous CUDA tensor on this rank's device; CPU tensors are rejected.
  void allreduce_sum(torch::Tensor& tensor) override;
  /// Host scalars are reduced over MPI (no device round-trip).
  double allreduce_sum(double value) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  /// Waits for this rank's current stream, then an MPI barrier.
  void barrier() override;
  /// MPI_Comm_split, then a new NCCL communicator per colour on the same device.
  std::shared_ptr<Communicator> split(int color, int key) override;
  /// ncclCommAbort, then MPI_Abort of the whole job.
  void abort(int exit_code) override;

  /// The CUDA device this rank's collectives run on.
  int device_index() const { return core_->device(); }
  nccl::NcclCore& core() { return *core_; }

 private:
  void check_tensor(const torch::Tensor& tensor, const char* operation) const;
  cudaStream_t current_stream() const;

  std::shared_ptr<MpiComm> bootstrap_;
  NcclCommOptions options_;
  std::unique_ptr<nccl::NcclCore> core_;
};

}  // namespace ddtrain
