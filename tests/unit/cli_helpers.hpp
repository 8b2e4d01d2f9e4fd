#pragma once
// Running the `ddtrain` executable from tests: scratch directories, captured output, and
// background runs that a test can signal.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "remove_tree.hpp"

namespace ddtrain::test {

namespace fs = std::filesystem;

struct Outcome {
  int status = 0;
  std::string out, err;
};

/// A fresh, empty directory for one test (ctest runs tests in parallel: names must differ).
inline fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ddtrain_cli_test_" + name);
  remove_tree(dir);
  fs::create_directories(dir);
  return dir;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// history.csv without the columns that measure time or count cached evaluations
/// (a resumed solver re-evaluates its first point once: same values, one more evaluation).
inline std::vector<std::string> trajectory(const fs::path& history) {
  std::istringstream in(slurp(history));
  std::vector<std::string> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    std::string cell;
    while (std::getline(cells_in, cell, ',')) cells.push_back(cell);
    cells.resize(11);
    // iteration, epoch, loss, metric, step_length, radius, accepted
    rows.push_back(cells[0] + "," + cells[1] + "," + cells[6] + "," + cells[7] + "," + cells[8] + "," +
                   cells[9] + "," + cells[10]);
  }
  return rows;
}

/// Runs `ddtrain ARGS` to completion; stdout and stderr captured.
inline Outcome run_cli(const std::string& args) {
  static const fs::path dir = scratch("io_" + std::to_string(getpid()));
  const std::string command = std::string(DDTRAIN_CLI_PATH) + " " + args + " >" + (dir / "out").string() +
                              " 2>" + (dir / "err").string();
  Outcome o;
  const int raw = std::system(command.c_str());
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  o.out = slurp(dir / "out");
  o.err = slurp(dir / "err");
  return o;
}

inline void expect_one_line_error(const std::string& args, const std::string& needle) {
  Outcome o = run_cli(args);
  EXPECT_NE(o.status, 0) << args;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << args << "\n" << o.err;
  EXPECT_NE(o.err.find("ddtrain: error"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << args << " -> " << o.err;
}

/// A command (`ddtrain ...` or `mpirun ...`) running in the background, signalable.
class BackgroundRun {
 public:
  /// `command` is run by /bin/sh with `exec`, so the pid is the command's own.
  BackgroundRun(const std::string& command, const fs::path& log) {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string line = "exec " + command + " >" + log.string() + " 2>&1";
      execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~BackgroundRun() {
    if (pid_ > 0 && !finished_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int sig) const { kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  /// Waits up to `seconds` for the process to end; its exit status, or -signal if killed,
  /// or -1000 on timeout (the process is then killed).
  int wait(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int raw = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, &raw, WNOHANG) == pid_) {
        finished_ = true;
        return WIFEXITED(raw) ? WEXITSTATUS(raw) : -WTERMSIG(raw);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1000;
  }

 private:
  pid_t pid_ = -1;
  bool finished_ = false;
};

/// Waits up to `seconds` for `path` to exist.
inline bool wait_for_file(const fs::path& path, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace ddtrain::test
