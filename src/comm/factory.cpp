#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"

#if DDTRAIN_WITH_MPI
#include "ddtrain/comm/mpi_comm.hpp"
#endif
#ifdef DDTRAIN_HAVE_NCCL_COMM
#include "ddtrain/comm/nccl_comm.hpp"
#endif

namespace ddtrain {

CommunicatorPtr make_communicator(CommBackend backend, const torch::Device& device) {
  if (backend == CommBackend::kAuto) {
    if (device.is_cuda() && nccl_available() && launched_under_mpi()) {
      backend = CommBackend::kNccl;
    } else if (mpi_available() && launched_under_mpi()) {
      backend = CommBackend::kMpi;
    } else {
      backend = CommBackend::kSelf;
    }
  }
  switch (backend) {
    case CommBackend::kSelf:
      return std::make_shared<SelfComm>();
    case CommBackend::kMpi:
#if DDTRAIN_WITH_MPI
      return std::make_shared<MpiComm>();
#else
      throw InvalidArgument("--comm mpi: this ddtrain was built without MPI (DDTRAIN_WITH_MPI=OFF)");
#endif
    case CommBackend::kNccl:
      DDTRAIN_CHECK(device.is_cuda(), InvalidArgument,
                    "--comm nccl needs CUDA tensors: use --device cuda (NCCL cannot reduce CPU tensors)");
#ifdef DDTRAIN_HAVE_NCCL_COMM
      return std::make_shared<NcclComm>(std::make_shared<MpiComm>());
#else
      throw InvalidArgument(
          "--comm nccl: this ddtrain was built without the NCCL backend (needs a CUDA LibTorch and "
          "libnccl)");
#endif
    default:
      break;
  }
  throw InvalidArgument("unknown communicator backend");
}

}  // namespace ddtrain
