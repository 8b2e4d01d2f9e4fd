// The `ddtrain` executable end to end: good runs write the results directory; bad input gives
// one clear error line on stderr, a non-zero exit, and nothing half-written.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct Outcome {
  int status = 0;
  std::string out, err;
};

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ddtrain_cli_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Outcome run_cli(const std::string& args) {
  // One directory per test process: ctest runs the tests of this file in parallel.
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

void expect_one_line_error(const std::string& args, const std::string& needle) {
  Outcome o = run_cli(args);
  EXPECT_NE(o.status, 0) << args;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << args << "\n" << o.err;
  EXPECT_NE(o.err.find("ddtrain: error"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << args << " -> " << o.err;
}

const std::string kFast = " --precision float64 --nf 32 --depth 2 --width 6 --quiet ";

}  // namespace

TEST(Cli, TrainWritesConfigHistoryAndSummary) {
  fs::path out = scratch("train") / "run";
  Outcome o = run_cli("train --problem poisson1d --solver lbfgs --epochs 5 --metric-every 2" + kFast +
                      "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  ASSERT_TRUE(fs::exists(out / "config.ini"));
  const std::string history = slurp(out / "history.csv");
  EXPECT_EQ(std::count(history.begin(), history.end(), '\n'), 6);  // header + 5 iterations
  auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  for (const char* key : {"problem", "solver", "ranks", "iterations", "evaluations", "final_loss",
                          "metric_name", "metric", "wall_time_s", "termination"})
    EXPECT_TRUE(summary.contains(key)) << key;
  EXPECT_EQ(summary["iterations"], 5);
  EXPECT_EQ(summary["metric_name"], "rel_l2");
  EXPECT_EQ(summary["termination"], "max_epochs");
  for (const auto& entry : fs::directory_iterator(out))
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  // The written config reproduces the run.
  fs::path again = out.parent_path() / "again";
  Outcome o2 = run_cli("train --config " + (out / "config.ini").string() + " --out " + again.string());
  ASSERT_EQ(o2.status, 0) << o2.err;
  EXPECT_EQ(slurp(again / "history.csv").substr(0, 80), history.substr(0, 80));
  EXPECT_EQ(nlohmann::json::parse(slurp(again / "summary.json"))["final_loss"], summary["final_loss"]);
}

TEST(Cli, SameSeedGivesIdenticalLosses) {
  fs::path base = scratch("repro");
  for (const char* name : {"a", "b"})
    ASSERT_EQ(run_cli("train --problem function_fit --solver adam --epochs 20 --seed 7" + kFast + "--out " +
                      (base / name).string()).status, 0);
  auto a = nlohmann::json::parse(slurp(base / "a" / "summary.json"));
  auto b = nlohmann::json::parse(slurp(base / "b" / "summary.json"));
  EXPECT_EQ(a["final_loss"], b["final_loss"]);
}

TEST(Cli, HelpAndVersion) {
  Outcome o = run_cli("--version");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("ddtrain"), std::string::npos);
  o = run_cli("train --help");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("--epochs"), std::string::npos);
  EXPECT_NE(o.out.find("--history"), std::string::npos);
}

TEST(Cli, BadInputGivesOneClearLine) {
  expect_one_line_error("frobnicate", "unknown command 'frobnicate'");
  expect_one_line_error("train --problem nope", "unknown problem 'nope'");
  expect_one_line_error("train --solver nope", "unknown solver 'nope'");
  expect_one_line_error("train --bogus 3", "bogus");
  expect_one_line_error("train --epochs 0", "--epochs must be >= 1");
  expect_one_line_error("train --epochs -5", "--epochs must be >= 1");
  expect_one_line_error("train --epochs abc", "epochs");
  expect_one_line_error("train --epochs 3 --epochs 4", "epochs");
  expect_one_line_error("train --solver sgd --lr -1", "--lr must be > 0");
  expect_one_line_error("train --solver lbfgs --history 0", "--history must be >= 1");
  expect_one_line_error("train --solver adam --history 5", "does not apply to solver 'adam'");
  expect_one_line_error("train --nf 0", "--nf must be >= 1");
  expect_one_line_error("train --precision float16", "--precision 'float16'");
  expect_one_line_error("train --device cuda", "no CUDA device");
  expect_one_line_error("train --device tpu", "--device 'tpu'");
  expect_one_line_error("train --comm nccl", "CUDA");
  expect_one_line_error("train --comm smoke", "unknown communicator 'smoke'");
  expect_one_line_error("train --config /nonexistent/ddtrain.ini", "cannot read --config");
  expect_one_line_error("train --solver lbfgs --partition 0-1", "--partition/--overlap apply only");
  expect_one_line_error("train --problem poisson1d --batch-size 10", "--batch-size does not apply");
  expect_one_line_error("train --activation cube", "unknown activation 'cube'");
  expect_one_line_error("train --quiet --verbose", "exclude each other");
  expect_one_line_error("reference allen_cahn", "needs --out");
  expect_one_line_error("compare --solvers", "needs a value");
}

TEST(Cli, ConfigFileErrorsNameTheFile) {
  fs::path dir = scratch("config");
  std::ofstream(dir / "bad.ini") << "epochs = 3\nno_such_key = 1\n";
  expect_one_line_error("train --config " + (dir / "bad.ini").string(), "no_such_key");
  std::ofstream(dir / "malformed.ini") << "epochs 3\n";
  expect_one_line_error("train --config " + (dir / "malformed.ini").string(), "malformed.ini");
}

TEST(Cli, ExistingOutputDirectoryNeedsOverwrite) {
  fs::path out = scratch("exists");
  std::ofstream(out / "keep.txt") << "precious";
  expect_one_line_error("train --epochs 1 --out " + out.string(), "--overwrite");
  EXPECT_EQ(slurp(out / "keep.txt"), "precious");
  EXPECT_FALSE(fs::exists(out / "summary.json"));
}
