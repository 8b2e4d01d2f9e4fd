#include "ddtrain/comm/mpi_comm.hpp"

#include <cstdlib>

#include "ddtrain/error.hpp"
#include "mpi_check.hpp"

namespace ddtrain {

namespace {

#define DDTRAIN_MPI_CALL(call) detail::check_mpi((call), #call)

MPI_Datatype mpi_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kUInt8: return MPI_UINT8_T;
    default:
      throw CommError(std::string("MpiComm: unsupported dtype ") +
                      std::string(c10::toString(t.scalar_type())));
  }
}

bool we_initialized_mpi = false;

void finalize_mpi_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

/// Runs `op` on a host copy of a CUDA tensor (MPI here is not assumed CUDA-aware).
template <typename Op>
void on_host(torch::Tensor& tensor, Op op) {
  if (!tensor.is_cuda()) {
    op(tensor);
    return;
  }
  torch::Tensor host = tensor.to(torch::kCPU);
  op(host);
  tensor.copy_(host);
}

/// An MPI_Iallreduce in flight; holds the tensor so its storage outlives the request.
class MpiPendingCollective final : public PendingCollective {
 public:
  MpiPendingCollective(torch::Tensor tensor, MPI_Request request)
      : tensor_(std::move(tensor)), request_(request) {}
  ~MpiPendingCollective() override {
    // MPI may still write into the tensor: it must not be freed before the request ends.
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  bool test() override {
    if (request_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    DDTRAIN_MPI_CALL(MPI_Test(&request_, &done, MPI_STATUS_IGNORE));
    return done != 0;
  }
  void wait() override {
    if (request_ != MPI_REQUEST_NULL) DDTRAIN_MPI_CALL(MPI_Wait(&request_, MPI_STATUS_IGNORE));
  }

 private:
  torch::Tensor tensor_;
  MPI_Request request_;
};

}  // namespace

void ensure_mpi_initialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  DDTRAIN_MPI_CALL(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  we_initialized_mpi = true;
  std::atexit(finalize_mpi_at_exit);
}

MpiComm::MpiComm() : MpiComm(MPI_COMM_NULL, false) {}

MpiComm::MpiComm(MPI_Comm comm, bool take_ownership) : comm_(comm), owned_(take_ownership) {
  ensure_mpi_initialized();
  if (comm_ == MPI_COMM_NULL) comm_ = MPI_COMM_WORLD;
  // Return codes instead of aborting inside MPI, so every call is checked and reported.
  DDTRAIN_MPI_CALL(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  DDTRAIN_MPI_CALL(MPI_Comm_rank(comm_, &rank_));
  DDTRAIN_MPI_CALL(MPI_Comm_size(comm_, &size_));
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owned_ && !finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiComm::allreduce_sum(torch::Tensor& tensor) {
  DDTRAIN_CHECK(tensor.is_contiguous(), CommError, "MpiComm::allreduce_sum needs a contiguous tensor");
  if (size_ == 1 || tensor.numel() == 0) return;
  on_host(tensor, [&](torch::Tensor& t) {
    DDTRAIN_CHECK(t.numel() <= INT32_MAX, CommError, "allreduce of more than 2^31 elements");
    DDTRAIN_MPI_CALL(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()),
                                   mpi_type(t), MPI_SUM, comm_));
  });
}

PendingCollectivePtr MpiComm::start_allreduce_sum(torch::Tensor& tensor) {
  DDTRAIN_CHECK(tensor.is_contiguous(), CommError, "MpiComm::start_allreduce_sum needs a contiguous tensor");
  if (size_ == 1 || tensor.numel() == 0 || tensor.is_cuda()) return Communicator::start_allreduce_sum(tensor);
  DDTRAIN_CHECK(tensor.numel() <= INT32_MAX, CommError, "allreduce of more than 2^31 elements");
  MPI_Request request = MPI_REQUEST_NULL;
  DDTRAIN_MPI_CALL(MPI_Iallreduce(MPI_IN_PLACE, tensor.data_ptr(), static_cast<int>(tensor.numel()),
                                  mpi_type(tensor), MPI_SUM, comm_, &request));
  return std::make_unique<MpiPendingCollective>(tensor, request);
}

void MpiComm::broadcast(torch::Tensor& tensor, int root) {
  DDTRAIN_CHECK(tensor.is_contiguous(), CommError, "MpiComm::broadcast needs a contiguous tensor");
  DDTRAIN_CHECK(root >= 0 && root < size_, CommError, "broadcast root ", root, " out of range");
  if (size_ == 1 || tensor.numel() == 0) return;
  on_host(tensor, [&](torch::Tensor& t) {
    DDTRAIN_MPI_CALL(MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t), root, comm_));
  });
}

void MpiComm::barrier() { DDTRAIN_MPI_CALL(MPI_Barrier(comm_)); }

std::shared_ptr<Communicator> MpiComm::split(int color, int key) {
  MPI_Comm sub = MPI_COMM_NULL;
  DDTRAIN_MPI_CALL(MPI_Comm_split(comm_, color, key, &sub));
  return std::make_shared<MpiComm>(sub, true);
}

void MpiComm::abort(int exit_code) { MPI_Abort(MPI_COMM_WORLD, exit_code); }

}  // namespace ddtrain
