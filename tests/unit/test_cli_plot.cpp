// `ddtrain plot`: files readable by all, the prediction on the reference's colour scale, and
// `--watch`, which re-renders a running job and ends when the run has finished or on SIGINT.
// Skipped (with the reason) where python3 has no matplotlib.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>

#include "cli_helpers.hpp"

using namespace ddtrain::test;

namespace {

bool matplotlib_available() {
  for (const char* python : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(python) + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) == 0) return true;
  return false;
}

#define SKIP_WITHOUT_MATPLOTLIB()                                                                  \
  if (!matplotlib_available())                                                                     \
  GTEST_SKIP() << "ddtrain plot needs python3 with matplotlib (apt-get install python3-matplotlib)"

const std::string kTiny = " --precision float64 --nf 32 --depth 2 --width 6 --quiet ";

/// A finished poisson1d run in `dir`.
void finished_run(const fs::path& dir) {
  const Outcome o = run_cli("train --problem poisson1d --solver lbfgs --epochs 5" + kTiny + "--out " + dir.string());
  ASSERT_EQ(o.status, 0) << o.err;
}

fs::perms mode_of(const fs::path& file) {
  return fs::status(file).permissions() & fs::perms::mask;
}

}  // namespace

TEST(CliPlot, PlotFilesAreReadableByAll) {
  SKIP_WITHOUT_MATPLOTLIB();
  const fs::path run = scratch("plot_mode") / "run";
  finished_run(run);
  const mode_t previous = umask(022);
  const Outcome o = run_cli("plot " + run.string());
  umask(previous);
  ASSERT_EQ(o.status, 0) << o.err;
  // 0644, not the 0600 of the temporary file the picture is written to.
  EXPECT_EQ(mode_of(run / "plots" / "convergence.png"),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
}

TEST(CliPlot, ThePredictionSharesTheReferencesColourScale) {
  SKIP_WITHOUT_MATPLOTLIB();
  const fs::path dir = scratch("plot_scale");
  // A field whose prediction overshoots the reference's range [-1, 1].
  {
    std::ofstream field(dir / "field.csv");
    field << "x,t,u_ref,u_pred,error\n";
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j)
        field << i << "," << j << "," << (i - 1) << "," << 3 * (i - 1) << "," << 2 * std::abs(i - 1) << "\n";
  }
  // The colour limits of the three panels, as solution() hands them to imshow.
  const std::string program =
      "import sys; sys.path.insert(0, '" + std::string(DDTRAIN_SOURCE_DIR) + "/scripts')\n"
      "import ddtrain_plot as p\n"
      "import matplotlib.axes\n"
      "limits = []\n"
      "show = matplotlib.axes.Axes.imshow\n"
      "def spy(self, *a, **k):\n"
      "    limits.append((k.get('vmin'), k.get('vmax')))\n"
      "    return show(self, *a, **k)\n"
      "matplotlib.axes.Axes.imshow = spy\n"
      "p.solution('" + (dir / "field.csv").string() + "', 'test', '" + (dir / "solution.png").string() + "')\n"
      "print(limits)\n";
  std::ofstream(dir / "spy.py") << program;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + (dir / "spy.py").string() + " >" + (dir / "out.txt").string() +
                         " 2>&1").c_str()), 0) << slurp(dir / "out.txt");
  const std::string printed = slurp(dir / "out.txt");
  EXPECT_NE(printed.find("[(-1.0, 1.0), (-1.0, 1.0), (None, None)]"), std::string::npos) << printed;
}

TEST(CliPlot, RunsAreLabelledByTheirDirectoryNamesLessCompareNumbers) {
  // `ddtrain compare` numbers its sub-directories ("2-lbfgs"); a directory of runs made
  // otherwise (bench/pinn_comparison.sh: "additive-dense", "multiplicative-dense") keeps the
  // whole names, which must not collapse into one label ("dense").
  SKIP_WITHOUT_MATPLOTLIB();
  const fs::path dir = scratch("plot_labels");
  for (const char* name : {"2-lbfgs", "1-adam", "multiplicative-dense", "additive-dense"}) {
    fs::create_directories(dir / name);
    std::ofstream(dir / name / "history.csv") << "iteration,wall_time_s,loss\n";
  }
  const std::string program =
      "import sys; sys.path.insert(0, '" + std::string(DDTRAIN_SOURCE_DIR) + "/scripts')\n"
      "import ddtrain_plot as p\n"
      "print([label for label, _, _ in p.find_runs('" + dir.string() + "')])\n";
  std::ofstream(dir / "labels.py") << program;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + (dir / "labels.py").string() + " >" + (dir / "out.txt").string() +
                         " 2>&1").c_str()), 0) << slurp(dir / "out.txt");
  EXPECT_EQ(slurp(dir / "out.txt"), "['adam', 'lbfgs', 'additive-dense', 'multiplicative-dense']\n");
}

TEST(CliPlot, WatchEndsAtOnceOnAFinishedRun) {
  SKIP_WITHOUT_MATPLOTLIB();
  const fs::path run = scratch("watch_finished") / "run";
  finished_run(run);
  BackgroundRun watch(std::string(DDTRAIN_CLI_PATH) + " plot --watch --interval 0.2 " + run.string(),
                      run.parent_path() / "log");
  EXPECT_EQ(watch.wait(60), 0) << slurp(run.parent_path() / "log");
  EXPECT_TRUE(fs::exists(run / "plots" / "convergence.png"));
  expect_one_line_error("plot --interval 1 " + run.string(), "--interval needs --watch");
  expect_one_line_error("plot --watch --interval 0 " + run.string(), "--interval '0'");
}

TEST(CliPlot, WatchRendersARunningJobAndEndsWhenSummaryJsonAppears) {
  SKIP_WITHOUT_MATPLOTLIB();
  const fs::path dir = scratch("watch_running");
  finished_run(dir / "done");
  for (const char* name : {"ends", "interrupted"}) {
    // A run still going: history.csv, no summary.json yet.
    const fs::path run = dir / name;
    fs::create_directories(run);
    fs::copy_file(dir / "done" / "history.csv", run / "history.csv");
    BackgroundRun watch(std::string(DDTRAIN_CLI_PATH) + " plot --watch --interval 0.2 " + run.string(),
                        dir / (std::string(name) + ".log"));
    ASSERT_TRUE(wait_for_file(run / "plots" / "convergence.png", 60)) << slurp(dir / (std::string(name) + ".log"));
    EXPECT_EQ(watch.wait(1), -1000) << "--watch ended before the run did";
    if (std::string(name) == "ends") {
      fs::copy_file(dir / "done" / "summary.json", run / "summary.json");
    } else {
      watch.signal(SIGINT);
    }
    EXPECT_EQ(watch.wait(60), 0) << name << ": " << slurp(dir / (std::string(name) + ".log"));
  }
}
