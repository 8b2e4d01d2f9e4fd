// Wall time per L-BFGS iteration on the Poisson 1-D PINN (serial or under mpirun), float32 and
// float64, for a few collocation-point counts. Prints CSV rows.
#include <chrono>
#include <cstdio>

#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/problems/basic.hpp"
#include "ddtrain/solvers/data_parallel.hpp"
#include "ddtrain/train.hpp"

int main() {
  auto world = ddtrain::make_communicator(ddtrain::CommBackend::kAuto, torch::kCPU);
  if (world->rank() == 0) std::printf("# ranks %d, threads %d\n# points,dtype,iterations,ms_per_iteration,evaluations_per_iteration\n",
                                      world->size(), torch::get_num_threads());
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (int64_t points : {1000, 10000}) {
      ddtrain::Basic1dOptions o;
      o.points = points;
      o.scaling = ddtrain::Scaling::kStrong;
      o.network.depth = 3;
      o.network.width = 50;
      o.dtype = dtype;
      o.shard = {world->rank(), world->size()};
      auto problem = ddtrain::make_poisson1d(o);
      ddtrain::Lbfgs solver;
      ddtrain::TrainOptions t;
      t.epochs = 50;
      t.metric_every = 0;
      const auto t0 = std::chrono::steady_clock::now();
      auto summary = ddtrain::train(*problem, solver, t, ddtrain::make_layout(world));
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (world->rank() == 0)
        std::printf("%lld,%s,%lld,%.3f,%.2f\n", static_cast<long long>(points),
                    dtype == torch::kFloat32 ? "float32" : "float64",
                    static_cast<long long>(summary.iterations), ms / summary.iterations,
                    static_cast<double>(summary.gradient_evaluations) / summary.iterations);
    }
  }
  return 0;
}
