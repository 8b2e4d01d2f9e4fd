#include "ddtrain/comm/nccl_core.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "mpi_check.hpp"

namespace ddtrain::nccl {

using ::ddtrain::detail::concat;

namespace detail {

void check_cuda(cudaError_t code, const char* call) {
  if (code == cudaSuccess) return;
  cudaGetLastError();  // clears a non-sticky error so the next, unrelated call does not report it
  throw CommError(concat(call, " failed: ", cudaGetErrorString(code), " (", cudaGetErrorName(code), ")"));
}

void check_nccl(ncclResult_t code, const char* call, ncclComm_t comm) {
  if (code == ncclSuccess) return;
  std::string message = concat(call, " failed: ", ncclGetErrorString(code));
  // The last error is NCCL's detailed, thread-local explanation (which peer, which transport).
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && *last != '\0') message += concat(": ", last);
  throw CommError(message);
}

}  // namespace detail

namespace {

using ::ddtrain::detail::check_mpi;

ncclDataType_t nccl_type(DataType type) {
  switch (type) {
    case DataType::kFloat32: return ncclFloat32;
    case DataType::kFloat64: return ncclFloat64;
    case DataType::kInt32: return ncclInt32;
    case DataType::kInt64: return ncclInt64;
    case DataType::kUInt8: return ncclUint8;
  }
  throw CommError("NcclCore: unknown DataType");
}

/// Makes `device` current for the scope and restores the caller's device afterwards, so NCCL
/// calls always run on the communicator's device whatever the caller selected.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    DDTRAIN_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) DDTRAIN_CUDA_CHECK(cudaSetDevice(device));
    device_ = device;
  }
  ~DeviceScope() {
    if (previous_ != device_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
  int device_ = 0;
};

/// The launcher's node-local rank, or -1 when no known launcher variable is set.
int local_rank_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID",
                           "MV2_COMM_WORLD_LOCAL_RANK"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    char* end = nullptr;
    long parsed = std::strtol(value, &end, 10);
    if (*end == '\0' && parsed >= 0) return static_cast<int>(parsed);
  }
  return -1;
}

}  // namespace

std::string NcclCoreOptions::validate() const {
  if (device < -1) return concat("NCCL device must be -1 (one GPU per local rank) or >= 0, got ", device);
  if (!std::isfinite(timeout_s) || timeout_s < 0) {
    return concat("NCCL timeout_s must be finite and >= 0 (0: no timeout), got ", timeout_s);
  }
  return "";
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string cuda_unavailable_reason() {
  int count = 0;
  cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    cudaGetLastError();
    return concat("cudaGetDeviceCount: ", cudaGetErrorString(code), " (", cudaGetErrorName(code), ")");
  }
  if (count == 0) return "no CUDA device is visible (check CUDA_VISIBLE_DEVICES)";
  return "";
}

int local_rank(MPI_Comm comm) {
  int from_launcher = local_rank_from_environment();
  if (from_launcher >= 0) return from_launcher;
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)");
  int rank = 0;
  int code = MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  check_mpi(code, "MPI_Comm_rank(node communicator)");
  return rank;
}

NcclCore::NcclCore(MPI_Comm comm, const NcclCoreOptions& options) : options_(options) {
  std::string problem = options.validate();
  DDTRAIN_CHECK(problem.empty(), InvalidArgument, problem);
  check_mpi(MPI_Comm_rank(comm, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &size_), "MPI_Comm_size");
  // Collective when no launcher variable is set: every rank calls it, before anything can fail.
  const int node_rank = options.device < 0 ? local_rank(comm) : 0;

  // Local set-up. A failure here is agreed on over MPI before the id broadcast, so a rank
  // without a GPU makes every rank throw instead of leaving the others blocked in MPI_Bcast.
  std::string local_error;
  ncclUniqueId id{};
  try {
    const int count = cuda_device_count();
    DDTRAIN_CHECK(count > 0, CommError, "NCCL needs a CUDA device: ", cuda_unavailable_reason());
    device_ = options.device >= 0 ? options.device : node_rank % count;
    DDTRAIN_CHECK(device_ < count, CommError, "CUDA device ", device_, " requested but only ", count,
                  " visible");
    DDTRAIN_CUDA_CHECK(cudaSetDevice(device_));
    if (rank_ == 0) DDTRAIN_NCCL_CHECK(nullptr, ncclGetUniqueId(&id));
  } catch (const Error& error) {
    local_error = error.what();
  }
  int ok = local_error.empty() ? 1 : 0;
  int all_ok = 0;
  check_mpi(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce(NCCL set-up status)");
  if (!all_ok) {
    throw CommError(local_error.empty()
                        ? std::string("NcclCore: set-up failed on another rank")
                        : concat("NcclCore on rank ", rank_, ": ", local_error));
  }
  check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm), "MPI_Bcast(ncclUniqueId)");
  const ncclResult_t joined = ncclCommInitRank(&comm_, size_, id, rank_);
  if (joined != ncclSuccess && comm_ != nullptr) {
    ncclCommAbort(comm_);  // frees a half-initialised communicator
    comm_ = nullptr;
  }
  detail::check_nccl(joined, "ncclCommInitRank", nullptr);
}

NcclCore::~NcclCore() {
  if (comm_ == nullptr || aborted_) return;
  int previous = 0;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                        cudaSetDevice(device_) == cudaSuccess;
  ncclCommDestroy(comm_);  // errors cannot be reported from a destructor
  if (switched) cudaSetDevice(previous);
  cudaGetLastError();
}

void NcclCore::check_usable(const char* operation) const {
  DDTRAIN_CHECK(!aborted_, CommError, "NcclCore::", operation,
                ": the NCCL communicator was aborted after an earlier error");
}

namespace {
/// Runs `call`; a CUDA/NCCL failure aborts the communicator (its state is unknown and peers
/// may be blocked in the same collective) before the CommError propagates.
template <typename Call>
void aborting_on_error(NcclCore& core, Call call) {
  try {
    call();
  } catch (const CommError&) {
    core.abort();
    throw;
  }
}
}  // namespace

void NcclCore::allreduce_sum(void* device_ptr, std::size_t count, DataType type, cudaStream_t stream) {
  check_usable("allreduce_sum");
  if (count == 0) return;
  DDTRAIN_CHECK(device_ptr != nullptr, CommError, "NcclCore::allreduce_sum: null buffer");
  aborting_on_error(*this, [&] {
    DeviceScope scope(device_);
    DDTRAIN_NCCL_CHECK(comm_, ncclAllReduce(device_ptr, device_ptr, count, nccl_type(type), ncclSum,
                                            comm_, stream));
  });
}

void NcclCore::broadcast(void* device_ptr, std::size_t count, DataType type, int root,
                         cudaStream_t stream) {
  check_usable("broadcast");
  DDTRAIN_CHECK(root >= 0 && root < size_, CommError, "NcclCore::broadcast: root ", root,
                " out of range for ", size_, " ranks");
  if (count == 0) return;
  DDTRAIN_CHECK(device_ptr != nullptr, CommError, "NcclCore::broadcast: null buffer");
  aborting_on_error(*this, [&] {
    DeviceScope scope(device_);
    DDTRAIN_NCCL_CHECK(comm_, ncclBroadcast(device_ptr, device_ptr, count, nccl_type(type), root,
                                            comm_, stream));
  });
}

void NcclCore::synchronize(cudaStream_t stream) {
  check_usable("synchronize");
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  aborting_on_error(*this, [&] {
    DeviceScope scope(device_);
    for (long polls = 0;; ++polls) {
      const cudaError_t state = cudaStreamQuery(stream);
      if (state == cudaSuccess) return;
      if (state != cudaErrorNotReady) DDTRAIN_CUDA_CHECK(state);
      ncclResult_t async_error = ncclSuccess;
      DDTRAIN_NCCL_CHECK(comm_, ncclCommGetAsyncError(comm_, &async_error));
      detail::check_nccl(async_error, "ncclCommGetAsyncError (a peer failed or the network broke)", comm_);
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      DDTRAIN_CHECK(options_.timeout_s == 0 || waited < options_.timeout_s, CommError,
                    "NcclCore::synchronize on rank ", rank_, ": the stream did not complete within ",
                    options_.timeout_s, " s (a peer may be stuck or gone); communicator aborted");
      // Spin briefly (collectives usually finish in microseconds), then stop burning a core.
      if (polls < 2000) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  });
}

void NcclCore::abort() noexcept {
  if (aborted_ || comm_ == nullptr) {
    aborted_ = true;
    return;
  }
  aborted_ = true;
  ncclCommAbort(comm_);
  cudaGetLastError();
}

}  // namespace ddtrain::nccl
