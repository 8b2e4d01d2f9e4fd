// Memory across iterations: 2,000 L-BFGS iterations (and 500 additive preconditioned L-BFGS
// iterations, each with local L-BFGS solves) on a small Allen-Cahn PINN, resident set size recorded at iteration 100 and at
// the end. Autograd graphs must be freed at every evaluation, so RSS must not grow.
// `bench_memory --check` (a ctest test) fails if RSS grows by more than 16 MiB.
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

double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

struct Growth {
  double at_100 = 0, at_end = 0;
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
  const double limit_mib = 16;
  std::printf("# solver,iterations,rss_mib_at_100,rss_mib_at_end,growth_mib\n");
  bool ok = true;
  ddtrain::Lbfgs lbfgs;
  ddtrain::PlbfgsOptions plbfgs_options;
  ddtrain::Plbfgs plbfgs(plbfgs_options);
  for (auto [name, solver, partitioned] : {std::tuple<const char*, ddtrain::Solver*, bool>{"lbfgs", &lbfgs, false},
                                           {"plbfgs-additive", &plbfgs, true}}) {
    const Growth g = measure(*solver, partitioned, partitioned ? iterations / 4 : iterations);
    const double growth = g.at_end - g.at_100;
    std::printf("%s,%lld,%.1f,%.1f,%.1f\n", name, static_cast<long long>(g.iterations), g.at_100, g.at_end, growth);
    if (g.iterations < 200 || growth > limit_mib) ok = false;
  }
  std::fflush(stdout);
  if (check && !ok) {
    std::fprintf(stderr, "bench_memory: RSS grew by more than %.0f MiB, or a run stopped before 200 iterations\n", limit_mib);
    return 1;
  }
  return 0;
}
