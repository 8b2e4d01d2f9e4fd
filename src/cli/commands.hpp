#pragma once
// The subcommands of the `ddtrain` executable.
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ddtrain::cli {

/// `ddtrain train [options]`: one training run; returns the process exit status.
int run_train(const std::vector<std::string>& args);
/// `ddtrain compare [options]`: several solvers on one problem, one table.
int run_compare(const std::vector<std::string>& args);
/// `ddtrain reference allen_cahn --out FILE`: writes the spectral reference solution.
int run_reference(const std::vector<std::string>& args);
/// The options of `ddtrain reference`.
boost::program_options::options_description reference_options();

/// `ddtrain plot DIR [--format png|svg]`: convergence plots (and Allen-Cahn heatmaps).
int run_plot(const std::vector<std::string>& args);
/// Renders the plots of a run or comparison directory; kExitOk on success. What the plotting
/// script prints goes to stderr with `output_to_stderr` (stdout is for JSON lines then).
int render_plots(const std::string& directory, const std::string& format, bool output_to_stderr = false);
/// Python 3 with matplotlib and the plotting script are present.
bool plotting_available();

/// One training run as `ddtrain train` does it; returns summary.json's content (rank 0's view)
/// and fills `status`. `print_summary` prints the closing line (text; --log-format jsonl
/// always ends with a "summary" object); `run_label` names the run in jsonl objects (compare).
nlohmann::json train_once(const std::vector<std::string>& args, int& status, bool print_summary,
                          const std::string& run_label = "");

/// Exit statuses.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;          ///< bad input, I/O or communication error
constexpr int kExitTrainingFailed = 2; ///< numerical failure / line-search failure / interrupted
constexpr int kExitUsage = 2;          ///< `ddtrain` without a command (usage printed)

}  // namespace ddtrain::cli
