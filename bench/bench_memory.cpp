// Memory across iterations: 2,000 L-BFGS iterations (and 500 additive preconditioned L-BFGS
// iterations, each with local L-BFGS solves) on a small Allen-Cahn PINN, resident set size recorded at iteration 100,
// half-way and at the end. Autograd graphs must be freed at every evaluation, so RSS must not grow.
// `bench_memory --check` (a ctest test) fails if RSS grows by more than 8 MiB, or by more than 4 MiB
// in the second half of a run. Without malloc_trim before each reading, glibc's cache of freed
// blocks showed +12 MiB over 2,000 iterations; with it, +0.2 MiB (live memory does not grow).
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/partition.hpp"
#include "ddtrain/problems/allen_cahn.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/solvers/plbfgs.hpp"
#include "ddtrain/train.hpp"

namespace {

/// Resident set size after returning the allocator's free memory to the system (malloc_trim),
/// so that the figure follows live memory rather than glibc's caching of freed blocks.
double resident_mib() {
  malloc_trim(0);
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

struct Growth {
  double at_100 = 0, at_half = 0, at_end = 0;
  int64_t iterations = 0;
};

Growth measure(ddtrain::Solver& solver, bool partitioned, int64_t iterations) {
  ddtrain::AllenCahnOptions o;
  o.nf = 256;
  o.depth = 3;
  o.width = 20;
  o.dtype = torch::kFloat64;
  ddtrain::AllenCahnProblem problem(o);
  ddtrain::TrainOptions t;
  t.epochs = iterations;
  t.metric_every = 0;
  Growth g;
  ddtrain::Callbacks callbacks;
  callbacks.on_iteration = [&](const ddtrain::IterationSummary& row) {
    if (row.iteration == 100) g.at_100 = resident_mib();
    if (row.iteration == iterations / 2) g.at_half = resident_mib();
    return true;
  };
  std::optional<ddtrain::Partition> partition;
  if (partitioned) partition = ddtrain::Partition::layerwise(problem.parameters().layers(), 3, 0);
  auto summary = ddtrain::train(problem, solver, t, ddtrain::make_layout(std::make_shared<ddtrain::SelfComm>()),
                                callbacks, partition ? &*partition : nullptr);
  g.at_end = resident_mib();
  g.iterations = summary.iterations;
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  const int64_t iterations = 2000;
  const double limit_mib = 8;
  // A leak grows with the iteration count; an allocator warming up does not: the second half of
  // a run must not add more than `limit_half_mib`.
  const double limit_half_mib = 4;
  std::printf("# solver,iterations,rss_mib_at_100,rss_mib_at_half,rss_mib_at_end,growth_mib,second_half_growth_mib\n");
  bool ok = true;
  ddtrain::Lbfgs lbfgs;
  ddtrain::PlbfgsOptions plbfgs_options;
  ddtrain::Plbfgs plbfgs(plbfgs_options);
  for (auto [name, solver, partitioned] : {std::tuple<const char*, ddtrain::Solver*, bool>{"lbfgs", &lbfgs, false},
                                           {"plbfgs-additive", &plbfgs, true}}) {
    const Growth g = measure(*solver, partitioned, partitioned ? iterations / 4 : iterations);
    const double growth = g.at_end - g.at_100;
    const double second_half = g.at_end - g.at_half;
    std::printf("%s,%lld,%.1f,%.1f,%.1f,%.1f,%.1f\n", name, static_cast<long long>(g.iterations), g.at_100,
                g.at_half, g.at_end, growth, second_half);
    if (g.iterations < 200 || growth > limit_mib || second_half > limit_half_mib) ok = false;
  }
  std::fflush(stdout);
  if (check && !ok) {
    std::fprintf(stderr, "bench_memory: RSS grew by more than %.0f MiB (or by more than %.0f MiB in the second half of a "
                 "run), or a run stopped before 200 iterations\n", limit_mib, limit_half_mib);
    return 1;
  }
  return 0;
}
