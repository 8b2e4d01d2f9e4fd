// Wall time of one L-BFGS iteration and one Adam step of ddtrain on the Allen–Cahn PINN
// (hard constraints; ResNet 6 x 40, tanh, float32 by default) for N_f = 2000, 10000, 40000
// residual points, with fused, Taylor-mode and autograd residual derivatives. The counterpart of
// bench/pytorch_allen_cahn.py; bench/run_allen_cahn_vs_pytorch.sh runs both. Prints CSV rows.
//
// Usage: bench_allen_cahn [--threads N] [--nf 2000,10000,40000]
//                         [--derivatives fused,taylor,autograd] [--chunk 256 (fused)]
//                         [--lbfgs-iterations 20] [--adam-steps 21] [--precision float32|float64]
//                         [--model resnet|fc|modified-mlp] [--depth 6] [--width 40]
//                         [--fourier-modes 1] [--ic-decay 0] [--device cpu|cuda|cuda:N]
// The network options are AllenCahnOptions' (the CLI's --model, --depth, ...). A derivative mode
// that does not apply to the network or device (AllenCahnOptions::why_not_fused: fused for
// modified-mlp, or on a device it does not run on) is skipped with a '#' line saying why.
// --device cuda (GPU 0) or cuda:N: model and points on that GPU, every clock read after
// torch::cuda::synchronize(); refused with one error line (exit status 2) when this LibTorch has
// no CUDA support or no GPU is present. L-BFGS: `iterations` warm-up iterations, then the same
// number timed (as the PyTorch side runs one warm-up step() of max_iter iterations and times a
// second one). Adam: 2 warm-up steps, then the median of single steps.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include "ddtrain/device.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/objective.hpp"
#include "ddtrain/problems/allen_cahn.hpp"
#include "ddtrain/solvers/data_parallel.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Process CPU time (all threads) in ms: robust against other load on a shared machine.
double cpu_ms() { return 1e3 * static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

/// Waits for the work queued on the device (kernels are asynchronous on CUDA), so that a clock
/// read next includes it; nothing to wait for on the CPU.
void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

ddtrain::AllenCahnOptions problem_options(ddtrain::AllenCahnOptions o, int64_t nf,
                                          ddtrain::Derivatives derivatives) {
  o.nf = nf;
  o.derivatives = derivatives;
  return o;
}

struct Row {
  double lbfgs_ms = 0, evaluations = 0, lbfgs_cpu = 0, adam_ms = 0, adam_cpu = 0;
};

Row measure(const ddtrain::AllenCahnOptions& options, const ddtrain::reference::ReferenceField& reference,
            int lbfgs_iterations, int adam_steps) {
  Row row;
  const torch::Device device = options.device;
  {
    ddtrain::AllenCahnProblem problem(options, reference);
    ddtrain::LocalObjective objective(problem.parameters(), [&] { return problem.loss({}); });
    ddtrain::Lbfgs solver;
    torch::Tensor x = objective.initial_point();
    for (int k = 0; k < lbfgs_iterations; ++k) ddtrain::step(solver, objective, x);
    objective.reset_counters();
    synchronize(device);
    const auto t0 = Clock::now();
    const double c0 = cpu_ms();
    for (int k = 0; k < lbfgs_iterations; ++k) ddtrain::step(solver, objective, x);
    synchronize(device);
    row.lbfgs_ms = ms_since(t0) / lbfgs_iterations;
    row.lbfgs_cpu = (cpu_ms() - c0) / lbfgs_iterations;
    row.evaluations =
        static_cast<double>(objective.counters().gradient + objective.counters().loss_only) / lbfgs_iterations;
  }
  std::vector<double> adam_ms;
  {
    ddtrain::AllenCahnProblem problem(options, reference);
    ddtrain::LocalObjective objective(problem.parameters(), [&] { return problem.loss({}); });
    ddtrain::Adam solver;
    torch::Tensor x = objective.initial_point();
    double c0 = 0;
    for (int k = 0; k < adam_steps + 2; ++k) {
      if (k == 2) {
        synchronize(device);
        c0 = cpu_ms();
      }
      const auto t0 = Clock::now();
      ddtrain::step(solver, objective, x);
      if (k >= 2) {
        synchronize(device);
        adam_ms.push_back(ms_since(t0));
      }
    }
    row.adam_cpu = (cpu_ms() - c0) / adam_steps;
  }
  std::nth_element(adam_ms.begin(), adam_ms.begin() + adam_ms.size() / 2, adam_ms.end());
  row.adam_ms = adam_ms[adam_ms.size() / 2];
  return row;
}

int run(int argc, char** argv) {
  int threads = 1, lbfgs_iterations = 20, adam_steps = 21;
  std::string nf_list = "2000,10000,40000", modes = "fused,taylor,autograd", precision = "float32";
  // The problem of every row but its point count and derivatives. Defaults: ResNet 6 x 40, tanh,
  // hard constraints, Fourier modes 1, ic-decay 0.
  ddtrain::AllenCahnOptions base;
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    DDTRAIN_CHECK(i + 1 < argc, ddtrain::InvalidArgument, key, " needs a value");
    const std::string value = argv[i + 1];
    if (key == "--threads") threads = std::atoi(value.c_str());
    else if (key == "--nf") nf_list = value;
    else if (key == "--derivatives") modes = value;
    else if (key == "--lbfgs-iterations") lbfgs_iterations = std::atoi(value.c_str());
    else if (key == "--adam-steps") adam_steps = std::max(1, std::atoi(value.c_str()));
    else if (key == "--precision") precision = value;
    else if (key == "--chunk") base.fused_chunk = std::atoll(value.c_str());
    else if (key == "--model") base.model = ddtrain::parse_pinn_model(value);
    else if (key == "--depth") base.depth = std::atoll(value.c_str());
    else if (key == "--width") base.width = std::atoll(value.c_str());
    else if (key == "--fourier-modes") base.fourier_modes = std::atoll(value.c_str());
    else if (key == "--ic-decay") base.ic_decay = std::atof(value.c_str());
    else if (key == "--device") base.device = ddtrain::parse_device(value);
    else throw ddtrain::InvalidArgument("unknown option " + key);
  }
  DDTRAIN_CHECK(precision == "float32" || precision == "float64", ddtrain::InvalidArgument,
                "--precision must be float32 or float64, got '", precision, "'");
  base.dtype = precision == "float64" ? torch::kFloat64 : torch::kFloat32;
  ddtrain::require_valid(base.validate());
  torch::set_num_threads(threads);
  // The reference field only feeds the metric, which is not timed: a tiny one saves set-up.
  ddtrain::reference::AllenCahnReferenceOptions small;
  small.nx = 16;
  small.nt_out = 3;
  const ddtrain::reference::ReferenceField reference = ddtrain::reference::solve_allen_cahn(small);

  const int64_t parameter_count = ddtrain::AllenCahnProblem(base, reference).parameters().size();
  const std::string on_device = base.device.is_cpu() ? "" : ", device " + base.device.str();
  std::printf("# ddtrain, threads %d, %s, model %s %lld x %lld (%lld parameters), fourier-modes %lld, ic-decay %g%s\n",
              torch::get_num_threads(), precision.c_str(), ddtrain::to_string(base.model).c_str(), static_cast<long long>(base.depth),
              static_cast<long long>(base.width), static_cast<long long>(parameter_count),
              static_cast<long long>(base.fourier_modes), base.ic_decay, on_device.c_str());
  std::printf("# nf,derivatives,lbfgs_ms_per_iteration,lbfgs_evaluations_per_iteration,adam_ms_per_step,"
              "lbfgs_cpu_ms_per_iteration,adam_cpu_ms_per_step\n");
  for (const std::string& mode : split(modes)) {
    const ddtrain::Derivatives derivatives = ddtrain::parse_derivatives(mode);
    if (derivatives == ddtrain::Derivatives::kFused && !base.why_not_fused().empty())
      std::printf("# skipped --derivatives fused for --model %s%s%s: %s\n", ddtrain::to_string(base.model).c_str(),
                  base.device.is_cpu() ? "" : " on ", base.device.is_cpu() ? "" : base.device.str().c_str(),
                  base.why_not_fused().c_str());
  }
  for (const std::string& nf_text : split(nf_list)) {
    const int64_t nf = std::atoll(nf_text.c_str());
    for (const std::string& mode : split(modes)) {
      const ddtrain::Derivatives derivatives = ddtrain::parse_derivatives(mode);
      if (derivatives == ddtrain::Derivatives::kFused && !base.why_not_fused().empty()) continue;
      const Row row = measure(problem_options(base, nf, derivatives), reference, lbfgs_iterations, adam_steps);
      std::printf("%lld,%s,%.3f,%.2f,%.3f,%.3f,%.3f\n", static_cast<long long>(nf), mode.c_str(), row.lbfgs_ms,
                  row.evaluations, row.adam_ms, row.lbfgs_cpu, row.adam_cpu);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const ddtrain::Error& e) {
    std::fprintf(stderr, "bench_allen_cahn: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // LibTorch's (c10::Error: a CUDA failure, out of memory)
    std::fprintf(stderr, "bench_allen_cahn: error: %s\n", e.what());
    return 1;
  }
}
