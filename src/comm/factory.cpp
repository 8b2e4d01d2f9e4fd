#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"

#if DDTRAIN_WITH_MPI
#include "ddtrain/comm/mpi_comm.hpp"
#endif
#ifdef DDTRAIN_HAVE_NCCL_COMM
#include "ddtrain/comm/nccl_comm.hpp"
#endif

#include <cstdio>
#include <cstdlib>

namespace ddtrain {

std::string mpi_library_version() {
#if DDTRAIN_WITH_MPI
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string v(text, length);
  return v.substr(0, v.find_first_of(",\n"));
#else
  return "";
#endif
}

void abort_job(int exit_code) {
#if DDTRAIN_WITH_MPI
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
#endif
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(exit_code);
}

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
