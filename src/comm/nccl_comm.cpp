#include "ddtrain/comm/nccl_comm.hpp"

#include <c10/cuda/CUDAStream.h>

#include "ddtrain/error.hpp"

namespace ddtrain {

namespace {

nccl::DataType nccl_type(const torch::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case torch::kFloat32: return nccl::DataType::kFloat32;
    case torch::kFloat64: return nccl::DataType::kFloat64;
    case torch::kInt32: return nccl::DataType::kInt32;
    case torch::kInt64: return nccl::DataType::kInt64;
    case torch::kUInt8: return nccl::DataType::kUInt8;
    default:
      throw CommError(std::string("NcclComm: unsupported dtype ") +
                      std::string(c10::toString(tensor.scalar_type())));
  }
}

}  // namespace

NcclComm::NcclComm(std::shared_ptr<MpiComm> bootstrap, const NcclCommOptions& options)
    : bootstrap_(std::move(bootstrap)), options_(options) {
  DDTRAIN_CHECK(bootstrap_ != nullptr, InvalidArgument, "NcclComm needs an MPI bootstrap communicator");
  const std::string problem = options_.validate();
  DDTRAIN_CHECK(problem.empty(), InvalidArgument, problem);
  core_ = std::make_unique<nccl::NcclCore>(bootstrap_->handle(), options_.core);
}

NcclComm::~NcclComm() = default;

void NcclComm::check_tensor(const torch::Tensor& tensor, const char* operation) const {
  DDTRAIN_CHECK(tensor.is_cuda(), CommError, "NcclComm::", operation, " needs a CUDA tensor, got a ",
                tensor.device().str(), " tensor (use --device cuda, or --comm mpi for CPU tensors)");
  DDTRAIN_CHECK(tensor.device().index() == core_->device(), CommError, "NcclComm::", operation,
                ": tensor on ", tensor.device().str(), " but this rank's NCCL communicator is on cuda:",
                core_->device());
  DDTRAIN_CHECK(tensor.is_contiguous(), CommError, "NcclComm::", operation, " needs a contiguous tensor");
}

cudaStream_t NcclComm::current_stream() const {
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(core_->device())).stream();
}

void NcclComm::allreduce_sum(torch::Tensor& tensor) {
  check_tensor(tensor, "allreduce_sum");
  if (tensor.numel() == 0) return;
  const cudaStream_t stream = current_stream();
  core_->allreduce_sum(tensor.data_ptr(), static_cast<std::size_t>(tensor.numel()), nccl_type(tensor),
                       stream);
  if (options_.wait_for_collectives) core_->synchronize(stream);
}

double NcclComm::allreduce_sum(double value) { return bootstrap_->allreduce_sum(value); }

void NcclComm::broadcast(torch::Tensor& tensor, int root) {
  check_tensor(tensor, "broadcast");
  DDTRAIN_CHECK(root >= 0 && root < size(), CommError, "broadcast root ", root, " out of range");
  if (tensor.numel() == 0) return;
  const cudaStream_t stream = current_stream();
  core_->broadcast(tensor.data_ptr(), static_cast<std::size_t>(tensor.numel()), nccl_type(tensor), root,
                   stream);
  if (options_.wait_for_collectives) core_->synchronize(stream);
}

void NcclComm::barrier() {
  // Collectives already enqueued on this rank must have finished when the barrier returns.
  core_->synchronize(current_stream());
  bootstrap_->barrier();
}

std::shared_ptr<Communicator> NcclComm::split(int color, int key) {
  auto sub = std::dynamic_pointer_cast<MpiComm>(bootstrap_->split(color, key));
  DDTRAIN_CHECK(sub != nullptr, CommError, "NcclComm::split: the MPI split did not give an MpiComm");
  NcclCommOptions sub_options = options_;
  sub_options.core.device = core_->device();
  return std::make_shared<NcclComm>(std::move(sub), sub_options);
}

void NcclComm::abort(int exit_code) {
  core_->abort();
  bootstrap_->abort(exit_code);
}

}  // namespace ddtrain
