#pragma once
/// @file
/// Communicator: the collectives every solver uses, behind one interface with backends
/// SelfComm (size 1), MpiComm (CPU tensors, Open MPI) and NcclComm (CUDA tensors).
#include <torch/torch.h>

#include <memory>
#include <string>

namespace ddtrain {

/// A collective in flight, returned by Communicator::start_allreduce_sum (c10d's Work). Its
/// tensor holds the result once wait() has returned or test() has returned true; until then
/// the tensor must be neither read nor written. Destroying an unfinished one waits for it.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  /// Lets the collective progress without blocking; true once it has completed.
  virtual bool test() = 0;
  /// Blocks until the collective has completed; throws CommError if it failed.
  virtual void wait() = 0;
};
using PendingCollectivePtr = std::unique_ptr<PendingCollective>;

/// The collectives of one group of ranks; every rank of the group must make the same calls.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Backend name: "self", "mpi" or "nccl".
  virtual std::string backend() const = 0;
  /// In-place elementwise sum over all ranks of a contiguous float32/float64 tensor.
  virtual void allreduce_sum(torch::Tensor& tensor) = 0;
  /// Starts allreduce_sum(tensor) and returns while it runs where the backend can (MpiComm on
  /// CPU tensors: MPI_Iallreduce); elsewhere it reduces at once and returns a finished handle.
  /// Started collectives count as calls: every rank starts them in the same order. The handle
  /// keeps the tensor's storage alive.
  virtual PendingCollectivePtr start_allreduce_sum(torch::Tensor& tensor);
  /// In-place broadcast of a contiguous tensor from `root` to all ranks.
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;
  /// Splits into sub-communicators: ranks with equal `color` form one, ordered by `key`.
  virtual std::shared_ptr<Communicator> split(int color, int key) = 0;

  /// Sum of the subdomain corrections held by the ranks (each rank holds the sum of the
  /// corrections of the subdomains it owns; supports are disjoint or overlap-weighted by the
  /// caller). One allreduce; the result is identical on every rank.
  void accumulate(torch::Tensor& correction) { allreduce_sum(correction); }
  /// Sum of a scalar over ranks, in float64 (for decisions all ranks must take identically).
  /// Virtual so a device backend (NcclComm) can reduce host scalars over its host transport.
  virtual double allreduce_sum(double value);
  /// Aborts the whole job (all ranks) after a fatal error on this rank; used by the CLI.
  virtual void abort(int exit_code) = 0;
};

using CommunicatorPtr = std::shared_ptr<Communicator>;

/// A communicator of size 1: every collective is the identity. Needs no MPI.
class SelfComm final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }
  void allreduce_sum(torch::Tensor& tensor) override;
  using Communicator::allreduce_sum;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override {}
  std::shared_ptr<Communicator> split(int color, int key) override;
  void abort(int exit_code) override;
};

/// Which backend `make_communicator` builds.
enum class CommBackend { kAuto, kSelf, kMpi, kNccl };
CommBackend parse_comm_backend(const std::string& name);  // throws InvalidArgument
std::string to_string(CommBackend backend);

/// True if this process was started by mpirun/srun with more than one process, or MPI built in
/// and already initialised.
bool launched_under_mpi();
/// Builds the world communicator. kAuto: nccl if `device` is CUDA and NCCL is built, else mpi
/// if launched under an MPI launcher (and MPI is built), else self.
CommunicatorPtr make_communicator(CommBackend backend, const torch::Device& device);

/// The MPI library's version string ("" without MPI).
std::string mpi_library_version();
/// Ends the whole job after a fatal error: MPI_Abort when MPI is initialised with more than
/// one process, else exits this process. Never returns.
[[noreturn]] void abort_job(int exit_code);

/// True if built with the respective backend.
bool mpi_available();
bool nccl_available();

}  // namespace ddtrain
