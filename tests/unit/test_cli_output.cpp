// What `ddtrain` writes for tools: `--log-format jsonl` (every stdout line one JSON object,
// nothing else) and comparison.csv (numbers in numeric columns, speed_up as --help defines it).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>

#include "cli_helpers.hpp"

using namespace ddtrain::test;

namespace {

const std::string kSmall = " --problem poisson1d --precision float64 --nf 32 --depth 2 --width 6 ";

/// Every line of `out` parsed as JSON (a line that is not JSON fails the test).
std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> objects;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    try {
      objects.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::parse_error& e) {
      ADD_FAILURE() << "stdout line is not JSON: '" << line << "' (" << e.what() << ")";
    }
    EXPECT_TRUE(objects.empty() || objects.back().is_object()) << line;
  }
  return objects;
}

std::vector<std::string> csv_cells(const std::string& line) {  // no quoted cells in these tests
  std::vector<std::string> cells;
  std::stringstream in(line);
  for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.push_back("");
  return cells;
}

bool is_number(const std::string& text) {
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

}  // namespace

TEST(CliOutput, JsonlTrainPrintsOnlyJsonObjects) {
  const fs::path out = scratch("jsonl_train") / "run";
  Outcome o = run_cli("train --solver adam --epochs 30 --metric-every 10 --progress-every 5 --log-format jsonl -v" +
                      kSmall + "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.err, "");
  const auto events = json_lines(o.out);
  ASSERT_GE(events.size(), 3u) << o.out;
  EXPECT_EQ(events.front()["event"], "setup");
  EXPECT_EQ(events.front()["solver"], "adam");
  std::vector<int64_t> iterations, evaluated;
  for (size_t i = 1; i + 1 < events.size(); ++i) {
    const auto& e = events[i];
    ASSERT_EQ(e["event"], "iteration") << e;
    for (const char* key : {"iteration", "epoch", "wall_time_s", "loss", "evaluations"})
      EXPECT_TRUE(e[key].is_number()) << key << ": " << e;
    iterations.push_back(e["iteration"].get<int64_t>());
    if (e.contains("metric")) {
      EXPECT_EQ(e["metric_name"], "rel_l2") << e;
      evaluated.push_back(e["iteration"].get<int64_t>());
    }
  }
  // Iteration 1 and every 5th (--progress-every); the metric where it was evaluated (every 10th).
  EXPECT_EQ(iterations, (std::vector<int64_t>{1, 5, 10, 15, 20, 25, 30}));
  EXPECT_EQ(evaluated, (std::vector<int64_t>{10, 20, 30}));
  const auto& summary = events.back();
  EXPECT_EQ(summary["event"], "summary");
  EXPECT_EQ(summary["termination"], "max_epochs");
  EXPECT_EQ(summary["iterations"], 30);
  EXPECT_EQ(summary["final_loss"], nlohmann::json::parse(slurp(out / "summary.json"))["final_loss"]);
  // -q: nothing on stdout at all.
  o = run_cli("train --epochs 3 --log-format jsonl -q" + kSmall);
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "");
  // A value that is not a format: one line, naming both accepted values.
  expect_one_line_error("train --log-format json" + kSmall, "--log-format 'json' (accepted: text, jsonl)");
}

TEST(CliOutput, JsonlFailedRunEndsWithItsSummaryAndSaysWhyOnStderr) {
  // SGD with learning rate 1e12 diverges (as in Cli.DivergingRunEndsWithNumericalFailure...).
  Outcome o = run_cli("train --problem function_fit --solver sgd --lr 1e12 --epochs 200 --log-format jsonl "
                      "--precision float64 --nf 32 --depth 2 --width 6");
  const auto events = json_lines(o.out);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(events.back()["event"], "summary");
  EXPECT_EQ(events.back()["termination"], "numerical_failure");
  EXPECT_EQ(o.err.rfind("ddtrain: error: sgd: training failed", 0), 0u) << o.err;
}

TEST(CliOutput, JsonlCompareAndComparisonCsvKeepNumbersInNumericColumns) {
  const fs::path out = scratch("jsonl_compare") / "cmp";
  Outcome o = run_cli("compare --solvers adam,lbfgs:history=5 --epochs 4 --metric-every 2 --no-plot --log-format jsonl" +
                      kSmall + "--out " + out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.err, "");
  const auto events = json_lines(o.out);
  ASSERT_FALSE(events.empty());
  std::vector<std::string> starts, summaries;
  for (const auto& e : events) {
    if (e["event"] == "start") starts.push_back(e["run"]);
    if (e["event"] == "summary") summaries.push_back(e["run"]);
    if (e["event"] == "iteration") {
      EXPECT_TRUE(e["run"].is_string()) << e;
    }
  }
  EXPECT_EQ(starts, (std::vector<std::string>{"adam", "lbfgs:history=5"}));
  EXPECT_EQ(summaries, starts);
  const auto& table = events.back();
  ASSERT_EQ(table["event"], "comparison");
  ASSERT_EQ(table["runs"].size(), 2u);
  EXPECT_EQ(table["runs"][0]["speed_up"], 1.0);
  EXPECT_EQ(table["runs"][1]["metric_name"], "rel_l2");

  std::istringstream csv(slurp(out / "comparison.csv"));
  std::string line;
  std::getline(csv, line);
  const std::vector<std::string> header = csv_cells(line);
  EXPECT_EQ(line, "run,ranks,iterations,epochs,evaluations,local_evaluations,train_time_s,elapsed_s,final_loss,"
                  "metric_name,metric,termination,time_to_target_s,speed_up");
  int rows = 0;
  while (std::getline(csv, line)) {
    const std::vector<std::string> cells = csv_cells(line);
    ASSERT_EQ(cells.size(), header.size()) << line;
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string& name = header[c];
      if (name == "run" || name == "metric_name" || name == "termination") continue;
      if (name == "time_to_target_s") {
        EXPECT_EQ(cells[c], "") << "no --target: never reached";  // empty, not "not reached"
        continue;
      }
      EXPECT_TRUE(is_number(cells[c])) << name << " = '" << cells[c] << "' in " << line;
    }
    // Without --target: the first run's train time over this run's.
    const double speed_up = std::stod(cells[13]), train_time = std::stod(cells[6]);
    EXPECT_NEAR(speed_up, table["runs"][0]["train_time_s"].get<double>() / train_time, 1e-9 * speed_up);
    ++rows;
  }
  EXPECT_EQ(rows, 2);

  // With --target the speed-up compares times to the target, and is empty when one was not
  // reached (a target of 0 is never reached).
  o = run_cli("compare --solvers adam,lbfgs --epochs 3 --target 0 --no-plot --overwrite" + kSmall + "--quiet --out " +
              out.string());
  ASSERT_EQ(o.status, 0) << o.err;
  std::istringstream again(slurp(out / "comparison.csv"));
  std::getline(again, line);
  while (std::getline(again, line)) EXPECT_EQ(line.substr(line.size() - 2), ",,") << "time_to_target_s, speed_up: " << line;
  EXPECT_NE(o.out.find("not reached"), std::string::npos) << o.out;  // the table for people says so
}
