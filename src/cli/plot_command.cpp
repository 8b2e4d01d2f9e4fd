// `ddtrain plot DIR`: renders the convergence plots (and Allen-Cahn heatmaps) of a run or a
// comparison with scripts/ddtrain_plot.py (Python 3 + matplotlib, no display needed).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sys/wait.h>

#include "commands.hpp"
#include "ddtrain/error.hpp"

namespace ddtrain::cli {

namespace fs = std::filesystem;

namespace {

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// The plotting script: $DDTRAIN_PLOT_SCRIPT, next to an installed executable
/// (PREFIX/share/ddtrain), or in the source tree of a build-tree executable.
fs::path plot_script() {
  if (const char* given = std::getenv("DDTRAIN_PLOT_SCRIPT")) return given;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "ddtrain" / "ddtrain_plot.py";
    if (fs::exists(installed, ec)) return installed;
  }
  return DDTRAIN_PLOT_SCRIPT_SOURCE;
}

/// A Python 3 with matplotlib: the system's first (a user's pyenv or venv python earlier in
/// PATH often lacks it), then whatever `python3` is. Empty if none.
std::string python_with_matplotlib() {
  for (const char* candidate : {"/usr/bin/python3", "python3"}) {
    const std::string probe = std::string(candidate) + " -c 'import matplotlib' >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return candidate;
  }
  return "";
}

}  // namespace

bool plotting_available() { return !python_with_matplotlib().empty() && fs::exists(plot_script()); }

int render_plots(const std::string& directory, const std::string& format, bool output_to_stderr) {
  const fs::path script = plot_script();
  DDTRAIN_CHECK(fs::exists(script), IoError, "the plotting script '", script.string(),
                "' is missing (set DDTRAIN_PLOT_SCRIPT)");
  const std::string python = python_with_matplotlib();
  DDTRAIN_CHECK(!python.empty(), InvalidArgument,
                "ddtrain plot needs python3 with matplotlib (Debian: apt-get install python3-matplotlib)");
  const std::string command = python + " " + shell_quote(script.string()) + " " + shell_quote(directory) +
                              " --format " + shell_quote(format) + (output_to_stderr ? " 1>&2" : "");
  std::fflush(stdout);
  const int raw = std::system(command.c_str());
  return WIFEXITED(raw) && WEXITSTATUS(raw) == 0 ? kExitOk : kExitError;
}

int run_plot(const std::vector<std::string>& args) {
  std::string directory, format = "png";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << "Usage: ddtrain plot DIR [--format png|svg]\n"
                   "  DIR is a run directory (ddtrain train --out) or a comparison (ddtrain compare --out).\n"
                   "  Writes DIR/plots/convergence.FORMAT: loss and metric (log scale, one line per run)\n"
                   "  against training wall time [s] and against gradient evaluations (global +\n"
                   "  subdomain-local; for classification: against epochs); and, for Allen-Cahn,\n"
                   "  DIR/plots/solution.FORMAT: reference, prediction (on the reference's colour scale)\n"
                   "  and |error| of the best run over t and x. Needs python3 + matplotlib.\n";
      return kExitOk;
    }
    if (args[i] == "--format") {
      DDTRAIN_CHECK(i + 1 < args.size(), InvalidArgument, "--format needs a value (png or svg)");
      format = args[++i];
      DDTRAIN_CHECK(format == "png" || format == "svg", InvalidArgument, "--format '", format,
                    "' (accepted: png, svg)");
    } else if (!args[i].empty() && args[i][0] == '-') {
      throw InvalidArgument("ddtrain plot: unknown option '" + args[i] + "' (see ddtrain plot --help)");
    } else {
      DDTRAIN_CHECK(directory.empty(), InvalidArgument, "ddtrain plot takes one directory, got '",
                    directory, "' and '", args[i], "'");
      directory = args[i];
    }
  }
  DDTRAIN_CHECK(!directory.empty(), InvalidArgument, "ddtrain plot needs a directory (ddtrain plot DIR)");
  std::error_code ec;
  DDTRAIN_CHECK(fs::is_directory(directory, ec), IoError, "ddtrain plot: '", directory,
                "' is not a directory");
  return render_plots(directory, format);
}

}  // namespace ddtrain::cli
