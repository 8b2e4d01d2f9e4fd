// The NCCL backend. Without a GPU (CI, the development machine) the error checking, the
// device probe and the factory's refusal run; tests that need a device skip, saying why. On a
// GPU machine the one-rank collectives on device buffers run too, and, with a CUDA LibTorch,
// NcclComm on CUDA tensors.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"

#if DDTRAIN_WITH_NCCL
#include "ddtrain/comm/mpi_comm.hpp"
#include "ddtrain/comm/nccl_core.hpp"
#endif
#ifdef DDTRAIN_HAVE_NCCL_COMM
#include "ddtrain/comm/nccl_comm.hpp"
#endif

namespace ddtrain {
namespace {

/// EXPECT that `statement` throws ErrorType whose message contains every one of `parts`.
template <typename ErrorType, typename Statement>
void expect_error_containing(Statement statement, const std::vector<std::string>& parts) {
  try {
    statement();
    ADD_FAILURE() << "no exception thrown";
  } catch (const ErrorType& error) {
    const std::string message = error.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    }
  }
}

TEST(NcclBackend, FactoryRejectsNcclForCpuTensors) {
  expect_error_containing<InvalidArgument>(
      [] { make_communicator(CommBackend::kNccl, torch::Device(torch::kCPU)); }, {"CUDA tensors"});
}

#if DDTRAIN_WITH_NCCL

using nccl::cuda_device_count;
using nccl::cuda_unavailable_reason;

TEST(NcclBackend, CudaErrorBecomesCommErrorNamingCallAndError) {
  expect_error_containing<CommError>([] { DDTRAIN_CUDA_CHECK(cudaErrorInvalidValue); },
                                     {"cudaErrorInvalidValue failed", "invalid argument",
                                      "(cudaErrorInvalidValue)"});
  EXPECT_NO_THROW(DDTRAIN_CUDA_CHECK(cudaSuccess));
}

TEST(NcclBackend, NcclErrorBecomesCommErrorNamingCallAndError) {
  expect_error_containing<CommError>([] { DDTRAIN_NCCL_CHECK(nullptr, ncclInvalidUsage); },
                                     {"ncclInvalidUsage failed", ncclGetErrorString(ncclInvalidUsage)});
  EXPECT_NO_THROW(DDTRAIN_NCCL_CHECK(nullptr, ncclSuccess));
}

TEST(NcclBackend, LinkedLibraryIsTheHeadersVersion) {
  int version = 0;
  DDTRAIN_NCCL_CHECK(nullptr, ncclGetVersion(&version));
  EXPECT_EQ(version, NCCL_VERSION_CODE);
}

TEST(NcclBackend, DeviceProbeNeverThrowsAndExplainsAbsence) {
  int count = -1;
  ASSERT_NO_THROW(count = cuda_device_count());
  EXPECT_GE(count, 0);
  // A reason is given exactly when there is no device.
  EXPECT_EQ(cuda_unavailable_reason().empty(), count > 0) << cuda_unavailable_reason();
}

TEST(NcclBackend, OptionsValidation) {
  EXPECT_EQ(nccl::NcclCoreOptions{}.validate(), "");
  nccl::NcclCoreOptions bad;
  bad.timeout_s = -1;
  EXPECT_NE(bad.validate().find("timeout_s"), std::string::npos);
  bad = {};
  bad.device = -2;
  EXPECT_NE(bad.validate().find("device"), std::string::npos);
}

/// A device, MPI (singleton when not under mpirun) and a one-rank NcclCore over MPI_COMM_SELF.
class NcclCoreOnDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "needs a CUDA GPU: " << cuda_unavailable_reason();
    ensure_mpi_initialized();
    core_ = std::make_unique<nccl::NcclCore>(MPI_COMM_SELF);
    DDTRAIN_CUDA_CHECK(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  template <typename T>
  void* to_device(const std::vector<T>& host) {
    void* device = nullptr;
    DDTRAIN_CUDA_CHECK(cudaMalloc(&device, host.size() * sizeof(T)));
    buffers_.emplace_back(device, &cudaFree);
    DDTRAIN_CUDA_CHECK(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return device;
  }
  template <typename T>
  std::vector<T> to_host(const void* device, std::size_t count) {
    std::vector<T> host(count);
    DDTRAIN_CUDA_CHECK(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

  std::unique_ptr<nccl::NcclCore> core_;
  cudaStream_t stream_ = nullptr;
  std::vector<std::unique_ptr<void, cudaError_t (*)(void*)>> buffers_;
};

TEST_F(NcclCoreOnDevice, OneRankCommunicatorOnThisRanksDevice) {
  EXPECT_EQ(core_->rank(), 0);
  EXPECT_EQ(core_->size(), 1);
  EXPECT_GE(core_->device(), 0);
  EXPECT_LT(core_->device(), cuda_device_count());
  int nccl_device = -1;
  DDTRAIN_NCCL_CHECK(core_->handle(), ncclCommCuDevice(core_->handle(), &nccl_device));
  EXPECT_EQ(nccl_device, core_->device());
}

TEST_F(NcclCoreOnDevice, AllreduceSumOfOneRankKeepsFloat64AndFloat32Values) {
  const std::vector<double> f64 = {1.5, -2.25, 1e-300, 3.0e300};
  void* d64 = to_device(f64);
  core_->allreduce_sum(d64, f64.size(), nccl::DataType::kFloat64, stream_);
  const std::vector<float> f32 = {0.5f, -7.0f, 1e30f};
  void* d32 = to_device(f32);
  core_->allreduce_sum(d32, f32.size(), nccl::DataType::kFloat32, stream_);
  core_->synchronize(stream_);
  EXPECT_EQ(to_host<double>(d64, f64.size()), f64);  // bit-exact: a one-rank sum is a copy
  EXPECT_EQ(to_host<float>(d32, f32.size()), f32);
}

TEST_F(NcclCoreOnDevice, AllreduceOfASubrangeLeavesTheRestAlone) {
  const std::vector<std::int64_t> values = {1, 2, 3, 4, 5};
  auto* base = static_cast<std::int64_t*>(to_device(values));
  core_->allreduce_sum(base + 1, 3, nccl::DataType::kInt64, stream_);
  core_->synchronize(stream_);
  EXPECT_EQ(to_host<std::int64_t>(base, values.size()), values);
}

TEST_F(NcclCoreOnDevice, BroadcastFromRootZeroAndRootChecked) {
  const std::vector<double> values = {4.0, -1.0, 0.125};
  void* device = to_device(values);
  core_->broadcast(device, values.size(), nccl::DataType::kFloat64, 0, stream_);
  core_->synchronize(stream_);
  EXPECT_EQ(to_host<double>(device, values.size()), values);
  expect_error_containing<CommError>(
      [&] { core_->broadcast(device, values.size(), nccl::DataType::kFloat64, 1, stream_); },
      {"root 1 out of range"});
  EXPECT_FALSE(core_->aborted());  // an argument error leaves the communicator usable
}

TEST_F(NcclCoreOnDevice, SynchronizeTimesOutAbortsAndRefusesLaterCalls) {
  nccl::NcclCoreOptions options;
  options.timeout_s = 0.2;
  nccl::NcclCore core(MPI_COMM_SELF, options);
  // A host callback keeps the stream busy for longer than the timeout, as a stuck peer would.
  DDTRAIN_CUDA_CHECK(cudaLaunchHostFunc(
      stream_, [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(1500)); }, nullptr));
  expect_error_containing<CommError>([&] { core.synchronize(stream_); }, {"did not complete within"});
  EXPECT_TRUE(core.aborted());
  DDTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  double* device = static_cast<double*>(to_device(std::vector<double>{1.0}));
  expect_error_containing<CommError>(
      [&] { core.allreduce_sum(device, 1, nccl::DataType::kFloat64, stream_); }, {"aborted"});
}

TEST_F(NcclCoreOnDevice, BadDeviceIsACommErrorNamingTheCount) {
  nccl::NcclCoreOptions options;
  options.device = cuda_device_count();
  expect_error_containing<CommError>([&] { nccl::NcclCore core(MPI_COMM_SELF, options); },
                                     {"requested but only"});
}

#endif  // DDTRAIN_WITH_NCCL

#ifdef DDTRAIN_HAVE_NCCL_COMM
// NcclComm over CUDA tensors, one rank (NCCL refuses two ranks of one communicator on one GPU,
// so multi-rank NCCL runs need as many GPUs as ranks).
TEST(NcclCommOnDevice, OneRankCollectivesOnCudaTensors) {
  if (nccl::cuda_device_count() == 0) GTEST_SKIP() << "needs a CUDA GPU: " << nccl::cuda_unavailable_reason();
  ensure_mpi_initialized();
  NcclComm comm(std::make_shared<MpiComm>(MPI_COMM_SELF));
  EXPECT_EQ(comm.backend(), "nccl");
  EXPECT_EQ(comm.size(), 1);
  const torch::Device device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.device_index()));
  torch::Tensor expected = torch::arange(7, torch::kFloat64) * 0.5 - 1.0;
  torch::Tensor tensor = expected.to(device);
  comm.allreduce_sum(tensor);
  EXPECT_TRUE(torch::equal(tensor.cpu(), expected));
  comm.broadcast(tensor, 0);
  EXPECT_TRUE(torch::equal(tensor.cpu(), expected));
  EXPECT_DOUBLE_EQ(comm.allreduce_sum(2.5), 2.5);
  comm.barrier();

  torch::Tensor on_host = expected.clone();
  expect_error_containing<CommError>([&] { comm.allreduce_sum(on_host); }, {"needs a CUDA tensor"});
  torch::Tensor strided = torch::zeros({4, 4}, torch::TensorOptions(torch::kFloat64).device(device)).t();
  expect_error_containing<CommError>([&] { comm.allreduce_sum(strided); }, {"contiguous"});

  auto sub = comm.split(0, 0);
  torch::Tensor ones = torch::ones({3}, torch::TensorOptions(torch::kFloat32).device(device));
  sub->allreduce_sum(ones);
  EXPECT_TRUE(torch::equal(ones.cpu(), torch::ones({3}, torch::kFloat32)));
}
#endif  // DDTRAIN_HAVE_NCCL_COMM

}  // namespace
}  // namespace ddtrain
