#pragma once
// Name -> factory registries of the CLI. A solver or problem registers itself from its own
// source file in src/cli/ with DDTRAIN_REGISTER_SOLVER / DDTRAIN_REGISTER_PROBLEM, so adding
// one touches no shared file. Only the CLI uses Boost.Program_options.
#include <boost/program_options.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ddtrain/comm/communicator.hpp"
#include "options.hpp"
#include "ddtrain/problem.hpp"
#include "ddtrain/solver.hpp"

namespace ddtrain::cli {

namespace po = boost::program_options;

/// Adds an option unless another registrant already defined it (shared names such as
/// --subdomains or --local-steps are defined once, by the first to ask).
void add_option_once(po::options_description& options, const char* name,
                     const po::value_semantic* semantic, const char* help);

/// --dense-memory-limit MB, shared by the solvers that keep dense inverse Hessians (bfgs, plbfgs
/// with --local-solver / --global-solver bfgs).
void add_dense_memory_limit_option(po::options_description& options);
/// --dense-memory-limit in bytes (0: default_dense_memory_limit()); refused when negative.
int64_t read_dense_memory_limit(OptionReader& options, int64_t default_bytes);

/// What a factory may use besides the parsed options.
struct RunSetup {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  uint64_t seed = 0;
  Shard shard;                  ///< this process's data shard
  int world_size = 1;
  int rank = 0;
  /// The data-parallel communicator of this rank (Layout::data); problems that communicate
  /// inside their loss (synchronized batch norm) use it. Null = not provided.
  CommunicatorPtr data_comm;
};

/// A solver reads its options only through the OptionReader (src/cli/options.hpp), with the
/// defaults of its library options struct as fallbacks: what it read is what config.ini records.
struct SolverEntry {
  std::string name;
  std::string summary;  ///< one line for --help
  std::function<void(po::options_description&)> add_options;
  /// The solver, its options read (and validated) through `options`. Cheap: also called to
  /// check and record the options before a run.
  std::function<SolverPtr(OptionReader& options)> make;
  /// Ranks per data-parallel group for this configuration (0 = all ranks in one group; a null
  /// function: 0).
  std::function<int(OptionReader& options)> data_parallel;
};

/// A problem reads its options only through the OptionReader, like a solver. Build one with
/// problem_entry(): reading the options (cheap) is separate from building the problem.
struct ProblemEntry {
  std::string name;
  std::string summary;
  std::function<void(po::options_description&)> add_options;
  /// Reads the problem's options (what a run would use), building nothing.
  std::function<void(OptionReader& options)> read_options;
  std::function<ProblemPtr(OptionReader& options, const RunSetup&)> make;
};

/// A ProblemEntry from `read(OptionReader&) -> Options` and `build(Options, const RunSetup&)
/// -> ProblemPtr`: one reading of the options serves both the run and config.ini.
template <typename Read, typename Build>
ProblemEntry problem_entry(std::string name, std::string summary,
                           std::function<void(po::options_description&)> add_options, Read read,
                           Build build) {
  return {std::move(name), std::move(summary), std::move(add_options),
          [read](OptionReader& options) { read(options); },
          [read, build](OptionReader& options, const RunSetup& setup) { return build(read(options), setup); }};
}

std::map<std::string, SolverEntry>& solver_registry();
std::map<std::string, ProblemEntry>& problem_registry();

struct SolverRegistrar {
  explicit SolverRegistrar(SolverEntry entry);
};
struct ProblemRegistrar {
  explicit ProblemRegistrar(ProblemEntry entry);
};

/// Comma-separated list of registered names (for messages).
std::string solver_names();
std::string problem_names();

}  // namespace ddtrain::cli

#define DDTRAIN_CLI_CONCAT_(a, b) a##b
#define DDTRAIN_CLI_CONCAT(a, b) DDTRAIN_CLI_CONCAT_(a, b)
#define DDTRAIN_REGISTER_SOLVER(...) \
  static ::ddtrain::cli::SolverRegistrar DDTRAIN_CLI_CONCAT(solver_registrar_, __LINE__)(__VA_ARGS__)
#define DDTRAIN_REGISTER_PROBLEM(...) \
  static ::ddtrain::cli::ProblemRegistrar DDTRAIN_CLI_CONCAT(problem_registrar_, __LINE__)(__VA_ARGS__)
