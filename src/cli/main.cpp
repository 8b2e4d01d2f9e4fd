// The `ddtrain` executable: subcommands, and the one place where errors become one line on
// stderr and a non-zero exit (under MPI, a fatal error on one rank ends the whole job).
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "ddtrain/comm/communicator.hpp"
#include "ddtrain/error.hpp"
#include "ddtrain/version.hpp"

namespace {

void print_usage() {
  std::cout << "ddtrain " << ddtrain::version()
            << ": domain-decomposition training of neural networks\n\n"
               "Usage: ddtrain <command> [options]\n\n"
               "Commands:\n"
               "  train       train one problem with one solver (ddtrain train --help)\n"
               "  compare     several solvers on one problem, one table (ddtrain compare --help);\n"
               "              without arguments: a small Allen-Cahn optimizer comparison\n"
               "  reference   write a reference solution (ddtrain reference allen_cahn --out FILE.mat)\n"
               "  plot        convergence plots of a run or comparison (ddtrain plot DIR)\n\n"
               "Options: --help, --version\n";
}

int dispatch(const std::vector<std::string>& args) {
  if (args.empty()) {  // a usage error: say how, exit 2 (as other command-line tools do)
    print_usage();
    return ddtrain::cli::kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage();
    return ddtrain::cli::kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "ddtrain " << ddtrain::version() << "\n";
    return ddtrain::cli::kExitOk;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "train") return ddtrain::cli::run_train(rest);
  if (args[0] == "compare") return ddtrain::cli::run_compare(rest);
  if (args[0] == "reference") return ddtrain::cli::run_reference(rest);
  if (args[0] == "plot") return ddtrain::cli::run_plot(rest);
  throw ddtrain::InvalidArgument("unknown command '" + args[0] + "' (accepted: train, compare, reference, plot; see ddtrain --help)");
}

std::string rank_prefix() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK"}) {
    if (const char* r = std::getenv(var)) return std::string("rank ") + r + ": ";
  }
  return "";
}

/// glibc hands large freed blocks back to the kernel (trim, mmap) and page-faults them in again
/// at the next evaluation: a training loop frees and re-allocates the same tensors every step,
/// and that showed as 18 % of a run in the kernel and 7x slower Adam steps on Allen-Cahn
/// (bench/RESULTS-allen-cahn.md). Keep freed memory in the process instead, unless the user
/// tunes malloc through glibc's own environment variables.
void keep_freed_memory_in_process() {
  for (const char* variable : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_",
                               "GLIBC_TUNABLES"})
    if (std::getenv(variable) != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_in_process();
  std::vector<std::string> args(argv + 1, argv + argc);
  int status = ddtrain::cli::kExitOk;
  try {
    status = dispatch(args);
  } catch (const std::exception& e) {
    std::string message = e.what();
    // LibTorch appends a C++ backtrace to its messages: keep the first line.
    message = message.substr(0, message.find('\n'));
    std::fprintf(stderr, "ddtrain: error: %s%s\n", rank_prefix().c_str(), message.c_str());
    ddtrain::abort_job(ddtrain::cli::kExitError);
  }
  std::fflush(stdout);
  return status;
}
