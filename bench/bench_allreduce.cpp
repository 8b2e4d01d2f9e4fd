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
    auto timed = [&](auto&& call) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = MPI_Wtime();
      call();
      return (MPI_Wtime() - t0) * 1e6;
    };
    auto raw_call = [&] {
      MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    };
    for (int k = 0; k < repetitions + 2; ++k) {
      // The order rotates so that no variant always runs first (cache, scheduling).
      double times[3];
      for (int j = 0; j < 3; ++j) {
        const int which = (j + k) % 3;
        if (which == 0) times[0] = timed(raw_call);
        if (which == 1) times[1] = timed([&] { comm->allreduce_sum(t); });
        if (which == 2) times[2] = timed([&] { comm->accumulate(t); });
        t.fill_(1.0f);
      }
      if (k >= 2) {  // warm-up
        raw.push_back(times[0]);
        ours.push_back(times[1]);
        accumulated.push_back(times[2]);
      }
    }
    const double r = median(raw), o = median(ours), a = median(accumulated);
    if (rank == 0)
      std::printf("%lld,%.2f,%.2f,%.3f,%.2f,%.3f\n", static_cast<long long>(bytes), r, o, o / r, a, a / r);
  }
  return 0;
}
