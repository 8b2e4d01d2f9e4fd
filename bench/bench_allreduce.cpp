// Communicator allreduce (MpiComm::allreduce_sum on a torch tensor) and the subdomain-correction
// `accumulate` against a raw in-place MPI_Allreduce on the same buffer, 1 KiB to 64 MiB,
// float32. Prints one row per size with the ratios ddtrain / raw (medians of repetitions, all
// measured in the same run, interleaved).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "ddtrain/comm/mpi_comm.hpp"

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  ddtrain::ensure_mpi_initialized();
  auto comm = std::make_shared<ddtrain::MpiComm>();
  const int rank = comm->rank();
  if (rank == 0)
    std::printf("# ranks %d\n# bytes,raw_us,allreduce_us,ratio,accumulate_us,accumulate_ratio\n", comm->size());
  for (int64_t bytes = 1024; bytes <= (64LL << 20); bytes *= 4) {
    const int64_t n = bytes / 4;
    torch::Tensor t = torch::ones({n}, torch::kFloat32);
    const int repetitions = bytes <= (1 << 20) ? 200 : 20;
    std::vector<double> raw, ours, accumulated;
    for (int k = 0; k < repetitions + 2; ++k) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double t1 = MPI_Wtime();
      MPI_Barrier(MPI_COMM_WORLD);
      double t2 = MPI_Wtime();
      comm->allreduce_sum(t);
      double t3 = MPI_Wtime();
      MPI_Barrier(MPI_COMM_WORLD);
      double t4 = MPI_Wtime();
      comm->accumulate(t);
      double t5 = MPI_Wtime();
      t.fill_(1.0f);
      if (k >= 2) {  // warm-up
        raw.push_back((t1 - t0) * 1e6);
        ours.push_back((t3 - t2) * 1e6);
        accumulated.push_back((t5 - t4) * 1e6);
      }
    }
    const double r = median(raw), o = median(ours), a = median(accumulated);
    if (rank == 0)
      std::printf("%lld,%.2f,%.2f,%.3f,%.2f,%.3f\n", static_cast<long long>(bytes), r, o, o / r, a, a / r);
  }
  return 0;
}
