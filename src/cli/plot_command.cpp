// `ddtrain plot DIR`: renders the convergence plots (and Allen-Cahn heatmaps) of a run or a
// comparison with scripts/ddtrain_plot.py (Python 3 + matplotlib, no display needed).
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sys/wait.h>
#include <thread>
#include <vector>

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

/// Runs `command` with /bin/sh and waits for it (unlike std::system, which ignores SIGINT
/// meanwhile: a Ctrl-C or `kill -INT` during a rendering stops `plot --watch` after it).
int run_shell(const std::string& command) {
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  DDTRAIN_CHECK(pid > 0, IoError, "cannot start the plotting script (fork failed)");
  int raw = 0;
  while (waitpid(pid, &raw, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return raw;
}

volatile std::sig_atomic_t g_stop_watching = 0;
void on_stop_signal(int) { g_stop_watching = 1; }

/// The run directories of DIR: DIR itself, or a comparison's sub-directories.
std::vector<fs::path> run_directories(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "history.csv", ec)) return {dir};
  std::vector<fs::path> runs;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (fs::exists(entry.path() / "history.csv", ec)) runs.push_back(entry.path());
  return runs;
}

/// Size and modification time of every history.csv: a change means new rows to plot.
std::string histories_state(const fs::path& dir) {
  std::string state;
  for (const fs::path& run : run_directories(dir)) {
    std::error_code ec;
    const auto size = fs::file_size(run / "history.csv", ec);
    const auto time = fs::last_write_time(run / "history.csv", ec).time_since_epoch().count();
    state += run.string() + ":" + std::to_string(size) + ":" + std::to_string(time) + ";";
  }
  return state;
}

/// A run is finished when it has written summary.json (its last file), a comparison when it
/// has written comparison.csv.
bool finished(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "summary.json", ec) || fs::exists(dir / "comparison.csv", ec);
}

/// Re-renders whenever a history.csv changed, every `interval_s`, until the run has finished
/// (one last rendering then) or SIGINT / SIGTERM; exit 0 unless the last rendering failed.
int watch_plots(const fs::path& dir, const std::string& format, double interval_s) {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  std::string rendered;  // the histories' state at the last rendering
  for (;;) {
    const bool done = finished(dir);  // before the state: a run that ends meanwhile is seen next round
    const std::string state = histories_state(dir);
    if (!state.empty() && (state != rendered || done)) {
      const int status = render_plots(dir.string(), format);
      if (g_stop_watching) return kExitOk;  // Ctrl-C while the script ran
      if (done) return status;
      // A half-written last row of a running job can fail one rendering: the next one follows.
      if (status != kExitOk) std::fprintf(stderr, "ddtrain plot: note: rendering failed; trying again\n");
      rendered = state;
    }
    DDTRAIN_CHECK(!done, IoError, "ddtrain plot --watch: '", dir.string(), "' has finished but holds no history.csv");
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(interval_s);
    while (!g_stop_watching && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_stop_watching) return kExitOk;
  }
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
  const int raw = run_shell(command);
  if (WIFSIGNALED(raw) && WTERMSIG(raw) == SIGINT) g_stop_watching = 1;  // Ctrl-C reached the script
  return WIFEXITED(raw) && WEXITSTATUS(raw) == 0 ? kExitOk : kExitError;
}

int run_plot(const std::vector<std::string>& args) {
  std::string directory, format = "png";
  bool watch = false, interval_given = false;
  double interval_s = 5;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << "Usage: ddtrain plot DIR [--format png|svg] [--watch [--interval S]]\n"
                   "  DIR is a run directory (ddtrain train --out) or a comparison (ddtrain compare --out).\n"
                   "  Writes DIR/plots/convergence.FORMAT: loss and metric (log scale, one line per run)\n"
                   "  against training wall time [s] and against gradient evaluations (global +\n"
                   "  subdomain-local; for classification: against epochs); and, for Allen-Cahn,\n"
                   "  DIR/plots/solution.FORMAT: reference, prediction (on the reference's colour scale)\n"
                   "  and |error| of the best run over t and x. Needs python3 + matplotlib.\n"
                   "  --watch: render again every --interval S seconds (default 5) while a history.csv\n"
                   "  in DIR changes; stop after a last rendering when the run has written summary.json\n"
                   "  (a comparison: comparison.csv), or on Ctrl-C; exit 0.\n";
      return kExitOk;
    }
    if (args[i] == "--format") {
      DDTRAIN_CHECK(i + 1 < args.size(), InvalidArgument, "--format needs a value (png or svg)");
      format = args[++i];
      DDTRAIN_CHECK(format == "png" || format == "svg", InvalidArgument, "--format '", format,
                    "' (accepted: png, svg)");
    } else if (args[i] == "--watch") {
      watch = true;
    } else if (args[i] == "--interval") {
      DDTRAIN_CHECK(i + 1 < args.size(), InvalidArgument, "--interval needs a value in seconds");
      const std::string text = args[++i];
      interval_given = true;
      size_t used = 0;
      try {
        interval_s = std::stod(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      DDTRAIN_CHECK(used == text.size() && interval_s > 0 && interval_s <= 86400, InvalidArgument,
                    "--interval '", text, "' is not a number of seconds in (0, 86400]");
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
  if (watch) return watch_plots(directory, format, interval_s);
  DDTRAIN_CHECK(!interval_given, InvalidArgument, "--interval needs --watch");
  return render_plots(directory, format);
}

}  // namespace ddtrain::cli
