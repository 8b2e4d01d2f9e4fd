#pragma once
// Option parsing and run construction shared by `ddtrain train` and `ddtrain compare`.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ddtrain/checkpoint.hpp"
#include "ddtrain/partition.hpp"
#include "ddtrain/train.hpp"
#include "progress.hpp"
#include "registry.hpp"

namespace ddtrain::cli {

struct TrainSetup {
  bool help_requested = false;
  std::string problem = "poisson1d";
  std::string solver = "lbfgs";
  std::filesystem::path out;
  std::filesystem::path resume;  ///< --resume DIR (empty: a new run)
  bool overwrite = false;
  bool quiet = false;
  bool verbose = false;
  int64_t progress_every = 10;
  LogFormat log_format = LogFormat::kText;
  bool ensemble = false;
  TrainOptions train;
  po::variables_map vm;
  /// The chosen solver's and problem's options as they resolved (defaults included).
  std::map<std::string, ResolvedOption> resolved;
  /// The problem's per-member options (OptionReader::member_real): one value, or with
  /// --ensemble one per member.
  std::map<std::string, std::vector<double>> member_options;
  /// The number of members the lists give (0: no option is a list).
  int list_members = 0;
};

/// Member `member`'s values of the per-member options, by name (JSON numbers).
nlohmann::json member_parameters(const TrainSetup& setup, int member);

/// The seed of ensemble member `member` (--seed for the member 0; a serial run with this --seed
/// and the member's options is the member's run).
uint64_t member_seed(uint64_t seed, int member);

/// A time limit without --epochs: as many epochs as the time allows.
constexpr int64_t kUnlimitedEpochs = int64_t{1} << 62;

/// --warmup SOLVER:N (steps = 0: none). Throws InvalidArgument with one line when malformed.
struct WarmupSpec {
  std::string solver;
  int64_t steps = 0;
};
WarmupSpec parse_warmup(const std::string& spec);
/// The options of `ddtrain train` that are neither a solver's nor a problem's.
po::options_description common_options();

/// Parses `args` (without the subcommand) and an optional --config INI file; prints --help.
/// Throws InvalidArgument with one clear line for anything unknown, malformed or out of range.
TrainSetup parse_train_setup(const std::vector<std::string>& args);

/// The solver of a parsed setup (its options validated; no problem is built). Throws
/// InvalidArgument for invalid solver options.
SolverPtr make_solver(const TrainSetup& setup);

/// Everything a training run needs, constructed from a setup.
struct Run {
  CommunicatorPtr world;  ///< all processes
  Layout layout;          ///< training layout (SelfComm-based in ensemble mode)
  ProblemPtr problem;
  SolverPtr solver;
  std::optional<Partition> partition;
  TrainOptions train;     ///< the setup's options, completed (data subdomains)
  std::string describe;   ///< device, precision, partition
  RunSetup run_setup;
  int member = -1;        ///< ensemble mode: this rank's member (= its rank); else -1
  /// The setup's resolved options, and --batch-size for a mini-batch problem.
  std::map<std::string, ResolvedOption> resolved;
};
Run build_run(const TrainSetup& setup);

/// Every option of the run (common, solver, problem), defaults included, by name: what
/// config.ini and summary.json record (not where the results go, nor the output switches).
std::map<std::string, std::string> run_config(const TrainSetup& setup, const Run& run);

/// DIR/config.ini: run_config as INI, usable as --config (replays the run).
std::string config_ini(const TrainSetup& setup, const Run& run);

/// The options that define the run's trajectory, plus the rank and parameter counts: a
/// checkpoint is only resumed by a run with the same identity.
RunIdentity run_identity(const TrainSetup& setup, const Run& run);

/// `expected` made to agree with `saved` (a checkpoint's identity) where they differ only in
/// writing an option at its default or leaving it out: a run checkpointed before config.ini
/// recorded the problem's and solver's defaults resumes with its config.ini, and one whose
/// config.ini has them resumes an old checkpoint.
RunIdentity identity_like_saved(RunIdentity expected, const RunIdentity& saved, const Run& run);

/// summary.json: the run's identity, its Summary, and the environment.
nlohmann::json run_summary_json(const TrainSetup& setup, const Run& run, const Summary& summary);

/// Prints the option reference (common, solvers, problems).
void print_train_help(const std::string& solver, const std::string& problem);

}  // namespace ddtrain::cli
