#include "ddtrain/comm/communicator.hpp"

#include <cstdlib>
#include <vector>

#include "ddtrain/enum_names.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain {

namespace {
class FinishedCollective final : public PendingCollective {
 public:
  bool test() override { return true; }
  void wait() override {}
};
}  // namespace

PendingCollectivePtr Communicator::start_allreduce_sum(torch::Tensor& tensor) {
  allreduce_sum(tensor);
  return std::make_unique<FinishedCollective>();
}

double Communicator::allreduce_sum(double value) {
  if (size() == 1) return value;
  torch::Tensor t = torch::full({1}, value, torch::kFloat64);
  allreduce_sum(t);
  return t.item<double>();
}

void SelfComm::allreduce_sum(torch::Tensor& tensor) {
  DDTRAIN_CHECK(tensor.is_contiguous(), CommError, "allreduce_sum needs a contiguous tensor");
}

void SelfComm::broadcast(torch::Tensor& tensor, int root) {
  DDTRAIN_CHECK(root == 0, CommError, "broadcast root ", root, " out of range for 1 rank");
}

std::shared_ptr<Communicator> SelfComm::split(int, int) { return std::make_shared<SelfComm>(); }

void SelfComm::abort(int exit_code) { std::_Exit(exit_code); }

namespace {
constexpr NameTable<CommBackend, 4> kBackendNames{{{CommBackend::kAuto, "auto"},
                                                   {CommBackend::kSelf, "self"},
                                                   {CommBackend::kMpi, "mpi"},
                                                   {CommBackend::kNccl, "nccl"}}};
}  // namespace

CommBackend parse_comm_backend(const std::string& name) {
  return parse_name(kBackendNames, name, "communicator");
}
std::string to_string(CommBackend backend) { return name_of(kBackendNames, backend); }

bool launched_under_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"}) {
    if (std::getenv(var) != nullptr) return true;
  }
  return false;
}

bool mpi_available() { return DDTRAIN_WITH_MPI != 0; }
bool nccl_available() {
#ifdef DDTRAIN_HAVE_NCCL_COMM
  return true;
#else
  return false;
#endif
}

}  // namespace ddtrain
