#pragma once
/// @file
/// NcclCore: NCCL collectives on raw device buffers, bootstrapped over MPI. Torch-free (CUDA
/// runtime + NCCL + MPI only), so it compiles and links on machines with the CUDA toolkit but
/// no GPU and a CPU-only LibTorch; NcclComm (nccl_comm.hpp) adapts it to torch::Tensor.
///
/// Every CUDA and NCCL call goes through DDTRAIN_CUDA_CHECK / DDTRAIN_NCCL_CHECK, which throw
/// ddtrain::CommError naming the call and the library's error text.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>
#include <string>

#include "ddtrain/error.hpp"

namespace ddtrain::nccl {

/// Element types the collectives accept (the sums are computed by NCCL in this type).
enum class DataType { kFloat32, kFloat64, kInt32, kInt64, kUInt8 };

struct NcclCoreOptions {
  /// CUDA device of this rank; -1: local_rank(comm) % cuda_device_count().
  int device = -1;
  /// synchronize() gives up (aborting the communicator) after this many seconds without the
  /// stream completing; 0: wait forever, still failing as soon as NCCL reports an async error.
  double timeout_s = 1800.0;

  /// "" or a one-line message naming the field.
  std::string validate() const;
};

/// Number of visible CUDA devices; 0 (never throws) when there is no driver or no GPU.
int cuda_device_count();
/// Why there is no usable CUDA device ("" when cuda_device_count() > 0), e.g.
/// "cudaGetDeviceCount: CUDA driver version is insufficient ... (cudaErrorInsufficientDriver)".
std::string cuda_unavailable_reason();
/// This process's rank among the processes of its node: the launcher's variable
/// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID) if set, else computed with
/// MPI_Comm_split_type over `comm` (then collective over `comm`).
int local_rank(MPI_Comm comm);

class NcclCore {
 public:
  /// Collective over `comm` (MPI must be initialised): picks and sets the device, rank 0 makes
  /// the NCCL unique id, MPI_Bcast shares it, ncclCommInitRank joins. If any rank fails before
  /// the id is shared, every rank throws CommError (none is left waiting).
  explicit NcclCore(MPI_Comm comm, const NcclCoreOptions& options = {});
  ~NcclCore();
  NcclCore(const NcclCore&) = delete;
  NcclCore& operator=(const NcclCore&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }
  bool aborted() const { return aborted_; }
  ncclComm_t handle() const { return comm_; }

  /// Enqueues an in-place elementwise sum over ranks of `count` elements at `device_ptr` on
  /// `stream` (returns before it completes; see synchronize()).
  void allreduce_sum(void* device_ptr, std::size_t count, DataType type, cudaStream_t stream);
  /// Enqueues an in-place broadcast from `root` on `stream`.
  void broadcast(void* device_ptr, std::size_t count, DataType type, int root, cudaStream_t stream);
  /// Waits for `stream` while polling ncclCommGetAsyncError, so a failed peer or a timeout ends
  /// with CommError (after ncclCommAbort) instead of a hang.
  void synchronize(cudaStream_t stream);
  /// Aborts the NCCL communicator (in-flight operations included); idempotent. Every later
  /// call throws CommError.
  void abort() noexcept;

 private:
  void check_usable(const char* operation) const;

  ncclComm_t comm_ = nullptr;
  NcclCoreOptions options_;
  int rank_ = 0;
  int size_ = 1;
  int device_ = -1;
  bool aborted_ = false;
};

namespace detail {
/// Throws CommError "<call> failed: <cudaGetErrorString> (<cudaGetErrorName>)" unless success.
void check_cuda(cudaError_t code, const char* call);
/// Throws CommError "<call> failed: <ncclGetErrorString>[: <ncclGetLastError>]" unless success.
void check_nccl(ncclResult_t code, const char* call, ncclComm_t comm);
}  // namespace detail

}  // namespace ddtrain::nccl

#define DDTRAIN_CUDA_CHECK(call) ::ddtrain::nccl::detail::check_cuda((call), #call)
#define DDTRAIN_NCCL_CHECK(comm, call) ::ddtrain::nccl::detail::check_nccl((call), #call, (comm))
